package events

import (
	"net/http"
	"slices"
)

// WithCORS answers browsers' cross-origin requests as HarperDB's operations
// API does with operationsApi.network.cors on, so that HarperDB Studio in a
// browser can call a node: requests from an allowed origin (any, when
// allowed is empty) get Access-Control-Allow-Origin, and their preflight
// (OPTIONS with Access-Control-Request-Method) is answered 204 with the
// methods and headers the operations API takes. Credentials travel in the
// Authorization header only (no cookies), so no origin gains anything a
// script there could not already send.
func WithCORS(h http.Handler, allowed []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && (len(allowed) == 0 || slices.Contains(allowed, origin) || slices.Contains(allowed, "*")) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Add("Vary", "Origin")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				w.Header().Set("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
				w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id")
				w.Header().Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}
