package node

import (
	"net"

	sockaddr "github.com/hashicorp/go-sockaddr"
)

// advertisedAdmin is the admin address gossiped to the other members (they fetch
// each other's /stats for the dashboard). A listener bound to a wildcard address
// (0.0.0.0:8080 in a container) is advertised with the host the other members reach
// this node's gossip on: the advertise address, else a specific gossip bind address,
// else the host's private IP, as memberlist picks it.
func advertisedAdmin(listen, advertiseAddr, gossipAddr string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		return listen
	}
	for _, a := range []string{advertiseAddr, gossipAddr} {
		if h, _, err := net.SplitHostPort(a); err == nil {
			if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
				return net.JoinHostPort(h, port)
			}
		}
	}
	if ip, err := sockaddr.GetPrivateIP(); err == nil && ip != "" {
		return net.JoinHostPort(ip, port)
	}
	return listen
}
