package node

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ringleader-go/ringleader/config"
)

// AdminTokenCookie is the cookie the dashboard keeps the admin token in: opening
// /?token=<token> once sets it (HttpOnly, SameSite=Strict) so that the page's own
// requests are authorised without the token in their URLs.
const AdminTokenCookie = "rl_admin_token"

// requireToken wraps the admin handler: with a token set, every request except
// GET /healthz (for load-balancer and Kubernetes probes, which carry no secrets)
// must carry "Authorization: Bearer <token>" or the dashboard's cookie, or it is
// answered 401. Tokens are compared in constant time.
func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte(token)
	ok := func(got string) bool { return got != "" && subtle.ConstantTimeCompare([]byte(got), want) == 1 }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		if bearer, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found && ok(strings.TrimSpace(bearer)) {
			next.ServeHTTP(w, r)
			return
		}
		if c, err := r.Cookie(AdminTokenCookie); err == nil && ok(c.Value) {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodGet && r.URL.Path == "/" && ok(r.URL.Query().Get("token")) {
			http.SetCookie(w, &http.Cookie{Name: AdminTokenCookie, Value: token, Path: "/", HttpOnly: true,
				SameSite: http.SameSiteStrictMode, MaxAge: int((12 * time.Hour).Seconds())})
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="ringleader admin"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "admin token required (Authorization: Bearer <token>)"})
	})
}

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
