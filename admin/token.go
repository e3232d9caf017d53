package admin

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"time"
)

// TokenCookie is the cookie the dashboard keeps the admin token in: opening
// /?token=<token> once sets it (HttpOnly, SameSite=Strict) so that the page's own
// requests are authorised without the token in their URLs.
const TokenCookie = "rl_admin_token"

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
		if c, err := r.Cookie(TokenCookie); err == nil && ok(c.Value) {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodGet && r.URL.Path == "/" && ok(r.URL.Query().Get("token")) {
			http.SetCookie(w, &http.Cookie{Name: TokenCookie, Value: token, Path: "/", HttpOnly: true,
				SameSite: http.SameSiteStrictMode, MaxAge: int((12 * time.Hour).Seconds())})
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="ringleader admin"`)
		writeError(w, CodeUnauthorized, "admin token required (Authorization: Bearer <token>)")
	})
}
