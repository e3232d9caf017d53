package admin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRequireToken(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	h := requireToken("tok", ok)
	for _, c := range []struct {
		method, target, auth, cookie string
		want                         int
	}{
		{"GET", "/cluster", "", "", http.StatusUnauthorized},
		{"GET", "/cluster", "Bearer nope", "", http.StatusUnauthorized},
		{"GET", "/cluster", "Basic tok", "", http.StatusUnauthorized},
		{"GET", "/cluster", "Bearer tok", "", http.StatusOK},
		{"POST", "/handlers/x/reset", "", "", http.StatusUnauthorized},
		{"POST", "/handlers/x/reset", "", "tok", http.StatusOK},
		{"GET", "/cluster", "", "nope", http.StatusUnauthorized},
		{"GET", "/healthz", "", "", http.StatusOK},
		{"GET", "/?token=nope", "", "", http.StatusUnauthorized},
		{"GET", "/cluster?token=tok", "", "", http.StatusUnauthorized}, // only the page takes ?token=
		{"GET", "/?token=tok", "", "", http.StatusSeeOther},
	} {
		req := httptest.NewRequest(c.method, c.target, nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		if c.cookie != "" {
			req.AddCookie(&http.Cookie{Name: TokenCookie, Value: c.cookie})
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s %s auth=%q cookie=%q: %d, want %d", c.method, c.target, c.auth, c.cookie, rec.Code, c.want)
		}
		if set := rec.Header().Get("Set-Cookie"); c.want == http.StatusSeeOther && (!strings.Contains(set, "HttpOnly") || !strings.Contains(set, "SameSite=Strict")) {
			t.Errorf("?token= set %q, want an HttpOnly, SameSite=Strict cookie", set)
		}
	}
	if requireToken("", ok) == nil {
		t.Fatal("nil handler")
	}
}
