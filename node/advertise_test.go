package node

import "testing"

func TestAdvertisedAdmin(t *testing.T) {
	for _, c := range []struct{ listen, advertise, gossip, want string }{
		{"127.0.0.1:8080", "", "127.0.0.1:7946", "127.0.0.1:8080"},
		{"0.0.0.0:8080", "10.1.2.3:7946", "0.0.0.0:7946", "10.1.2.3:8080"},
		{"[::]:8080", "", "10.0.0.7:7946", "10.0.0.7:8080"},
	} {
		if got := advertisedAdmin(c.listen, c.advertise, c.gossip); got != c.want {
			t.Errorf("advertisedAdmin(%q, %q, %q) = %q, want %q", c.listen, c.advertise, c.gossip, got, c.want)
		}
	}
	if got := advertisedAdmin("0.0.0.0:8080", "", "0.0.0.0:7946"); got == "0.0.0.0:8080" {
		t.Logf("no private IP on this host: %q", got) // falls back to the listen address
	}
}
