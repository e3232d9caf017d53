package node

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/ringleader-go/ringleader/config"
)

// natsOptions are the NATS connection options from the configuration's security
// settings: a credentials file, an nkey seed, TLS CAs and a client certificate.
// Missing or unreadable files are errors that name the setting.
func natsOptions(cfg config.Config) ([]nats.Option, error) {
	var opts []nats.Option
	if cfg.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
	}
	if cfg.NATSNkey != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NATSNkey)
		if err != nil {
			return nil, fmt.Errorf("node: NATS nkey seed file (--nats-nkey) %s: %w", cfg.NATSNkey, err)
		}
		opts = append(opts, o)
	}
	if cfg.NATSTLSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.NATSTLSCA))
	}
	if cfg.NATSTLSCert != "" || cfg.NATSTLSKey != "" {
		opts = append(opts, nats.ClientCert(cfg.NATSTLSCert, cfg.NATSTLSKey))
	}
	// Apply them to a throw-away options value so that unreadable TLS files fail here,
	// with the setting's name, rather than as a connection error.
	var probe nats.Options
	for _, o := range opts {
		if err := o(&probe); err != nil {
			return nil, fmt.Errorf("node: NATS security options (--nats-creds, --nats-tls-*): %w", err)
		}
	}
	return opts, nil
}

// natsError reports an asynchronous error of the node's NATS connection: a
// permission violation (a subscription or publish the server's permission set
// refuses, which silently breaks the feature behind it), a slow consumer, or
// another. Each is logged and counted in ringleader_nats_errors_total.
func (n *Node) natsError(_ *nats.Conn, sub *nats.Subscription, err error) {
	kind := "other"
	switch {
	case errors.Is(err, nats.ErrPermissionViolation):
		kind = "permission"
	case errors.Is(err, nats.ErrSlowConsumer):
		kind = "slow_consumer"
	}
	ev := n.log.Error().Err(err).Str("kind", kind)
	if sub != nil {
		ev = ev.Str("subject", sub.Subject)
	}
	ev.Msg("NATS reported an error on the node's connection")
	if n.metrics != nil {
		n.metrics.natsErrors.WithLabelValues(kind).Inc()
	}
}
