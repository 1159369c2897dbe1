package events

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestCORS(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(405)
			return
		}
		w.WriteHeader(200)
	})
	studio := "https://studio.harperdb.io"
	cases := []struct {
		name          string
		allowed       []string
		method        string
		origin        string
		preflight     bool
		status        int
		allowOrigin   string
		allowsHeaders bool
	}{
		{"no origin: untouched", nil, "POST", "", false, 200, "", false},
		{"any origin, request", nil, "POST", studio, false, 200, studio, false},
		{"any origin, preflight", nil, "OPTIONS", studio, true, 204, studio, true},
		{"listed origin", []string{studio}, "OPTIONS", studio, true, 204, studio, true},
		{"unlisted origin: no CORS headers, preflight not answered", []string{studio}, "OPTIONS", "https://evil.example", true, 405, "", false},
		{"unlisted origin, request: no header, the browser hides the reply", []string{studio}, "POST", "https://evil.example", false, 200, "", false},
		{"OPTIONS without a preflight header goes through", nil, "OPTIONS", studio, false, 405, studio, false},
	}
	for _, c := range cases {
		req := httptest.NewRequest(c.method, "/", nil)
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		if c.preflight {
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
		}
		rec := httptest.NewRecorder()
		WithCORS(inner, c.allowed).ServeHTTP(rec, req)
		if rec.Code != c.status || rec.Header().Get("Access-Control-Allow-Origin") != c.allowOrigin ||
			(rec.Header().Get("Access-Control-Allow-Headers") != "") != c.allowsHeaders {
			t.Errorf("%s: %d %v", c.name, rec.Code, rec.Header())
		}
	}
}
