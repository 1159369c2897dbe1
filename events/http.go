package events

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MaxHTTPBody bounds an HTTP request body.
const MaxHTTPBody = 1 << 20

// Health answers /livez and /readyz.
type Health interface {
	// Ready reports whether the node serves operations and its workers have
	// converged once; reason says what is missing when not, and when ready
	// what is degraded ("" when nothing).
	Ready() (ok bool, reason string)
}

// HTTPHandler serves operations as HarperDB's operations API (POST / with the
// operation in the body) plus /livez, /health, /readyz and /metrics.
func HTTPHandler(d *Dispatcher, m *Metrics, h Health) http.Handler {
	mux := http.NewServeMux()
	live := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	}
	mux.HandleFunc("/livez", live)
	// HarperDB's health check (its SDKs' Healthcheck): the process serves,
	// no credentials needed (sent ones are ignored).
	mux.HandleFunc("/health", live)
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		ok, reason := h.Ready()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "not ready: "+reason+"\n")
			return
		}
		if reason != "" { // ready, but something is degraded
			_, _ = io.WriteString(w, "ok, degraded: "+reason+"\n")
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			writeJSON(w, 404, Errorf(404, "Not found: %s", r.URL.Path).Body())
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeJSON(w, 405, Errorf(405, "Use POST with a JSON body carrying \"operation\"").Body())
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxHTTPBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeJSON(w, 413, Errorf(413, "Request body is larger than the %d byte limit", MaxHTTPBody).Body())
				return
			}
			writeJSON(w, 400, Errorf(400, "Invalid JSON body: %s", err.Error()).Body())
			return
		}
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(body, &probe); err != nil || probe == nil {
			writeJSON(w, 400, Errorf(400, "Invalid JSON body: %s", notAnObject(err)).Body())
			return
		}
		var op string
		if raw, ok := probe["operation"]; !ok {
			writeJSON(w, 400, Errorf(400, "'operation' is required").Body())
			return
		} else if json.Unmarshal(raw, &op) != nil {
			writeJSON(w, 400, Errorf(400, "'operation' must be a string").Body())
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		status, out := d.DispatchSync(ctx, Request{
			Op: op, Body: body, Authorization: r.Header.Get("Authorization"), RequestID: r.Header.Get("X-Request-Id"),
			ClientCertUser: clientCertUser(r),
		})
		writeJSON(w, status, out)
	})
	return mux
}

// notAnObject says why a body is not a JSON object in the words the NATS
// transport uses, never naming Go types.
func notAnObject(err error) string {
	if err == nil {
		return "expected a JSON object, got null"
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		switch te.Value {
		case "array":
			return "expected a JSON object, got an array"
		case "bool":
			return "expected a JSON object, got a boolean"
		default:
			return "expected a JSON object, got a " + te.Value
		}
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
