package node_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
)

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sign signs claims with key using method, whatever iss they carry.
func sign(t *testing.T, method jwt.SigningMethod, key any, c events.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(iss string, role string, iat, exp time.Time) events.Claims {
	return events.Claims{Role: role, RegisteredClaims: jwt.RegisteredClaims{
		Subject: "admin", Issuer: iss, Audience: jwt.ClaimStrings{events.Audience},
		IssuedAt: jwt.NewNumericDate(iat), ExpiresAt: jwt.NewNumericDate(exp),
	}}
}

// rawRequest sends body on subject with a raw Authorization header value
// (empty = no header).
func rawRequest(t *testing.T, nc *nats.Conn, subject, auth, body string) nodetest.Reply {
	t.Helper()
	msg := nats.NewMsg(subject)
	msg.Data = []byte(body)
	if auth != "" {
		msg.Header.Set("Authorization", auth)
	}
	resp, err := nc.RequestMsg(msg, 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	r := nodetest.Reply{Status: 200, Body: resp.Data, Header: resp.Header}
	if code := resp.Header.Get("Nats-Service-Error-Code"); code != "" {
		if r.Status, err = strconv.Atoi(code); err != nil {
			t.Fatalf("Nats-Service-Error-Code %q", code)
		}
	}
	return r
}

// httpRaw posts body to the operations API with a raw Authorization header
// value (empty = no header).
func httpRaw(t *testing.T, port int, auth, body string) nodetest.Reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/", port), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return nodetest.Reply{Status: resp.StatusCode, Body: b, Header: nats.Header(resp.Header)}
}

func TestUnauthorizedTokensAre401AndChangeNothing(t *testing.T) {
	trusted := newKey(t)
	cfg := nodetest.Config(t, "auth")
	cfg.Auth.TrustedIssuers = []string{events.IssuerID(trusted.Public().(ed25519.PublicKey))}
	n := nodetest.Start(t, cfg)
	nc := nodetest.Connect(t, n)
	nodeIss := events.IssuerID(n.IssuerKey().Public().(ed25519.PublicKey))
	now := time.Now()

	untrusted, err := events.Mint(newKey(t), "admin", "super_user", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	noExp := claims(nodeIss, "super_user", now, now)
	noExp.ExpiresAt = nil
	wrongAud := claims(nodeIss, "super_user", now, now.Add(time.Hour))
	wrongAud.Audience = jwt.ClaimStrings{"harperdb"}
	valid := sign(t, jwt.SigningMethodEdDSA, n.IssuerKey(), claims(nodeIss, "super_user", now, now.Add(time.Hour)))
	// A genuine cluster_user token whose payload was swapped for a super_user one.
	weak := strings.Split(sign(t, jwt.SigningMethodEdDSA, n.IssuerKey(), claims(nodeIss, "cluster_user", now, now.Add(time.Hour))), ".")
	escalated := weak[0] + "." + strings.Split(valid, ".")[1] + "." + weak[2]

	cases := []struct {
		name, auth, reason string
	}{
		{"missing", "", "missing Authorization header"},
		{"not bearer", "Basic YWRtaW46cGFzcw==", "Authorization header must be 'Bearer <token>'"},
		{"bearer without token", "Bearer", "Authorization header must be 'Bearer <token>'"},
		{"malformed", "Bearer not-a-jwt", "token is malformed"},
		{"malformed segments", "Bearer a.b.c", "token is malformed"},
		{"forged signature", "Bearer " + sign(t, jwt.SigningMethodEdDSA, newKey(t), claims(nodeIss, "super_user", now, now.Add(time.Hour))), "token signature is invalid"},
		{"role escalated in payload", "Bearer " + escalated, "token signature is invalid"},
		{"hmac instead of eddsa", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte("secret"), claims(nodeIss, "super_user", now, now.Add(time.Hour))), "token signature is invalid"},
		{"expired", "Bearer " + sign(t, jwt.SigningMethodEdDSA, n.IssuerKey(), claims(nodeIss, "super_user", now.Add(-2*time.Hour), now.Add(-time.Hour))), "token has expired"},
		{"no expiry", "Bearer " + sign(t, jwt.SigningMethodEdDSA, n.IssuerKey(), noExp), "token is missing a required claim (exp)"},
		{"wrong audience", "Bearer " + sign(t, jwt.SigningMethodEdDSA, n.IssuerKey(), wrongAud), "token audience is not clusterd"},
		{"untrusted issuer", "Bearer " + untrusted, "token issuer is not trusted"},
	}
	setBody := `{"server":"hub","routes":[{"host":"127.0.0.1","port":1}]}`
	before := n.Store.Commits()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := "Unauthorized: " + c.reason
			for _, op := range []string{"cluster_set_routes", "cluster_get_routes", "cluster_delete_routes"} {
				wantError(t, rawRequest(t, nc, "ops.cluster."+op, c.auth, setBody), 401, want)
			}
			// Invalid bodies and unknown operations are not looked at before the token is.
			wantError(t, rawRequest(t, nc, "ops.cluster.cluster_set_routes", c.auth, `[1,2`), 401, want)
			wantError(t, rawRequest(t, nc, "ops.cluster.no_such_op", c.auth, `{}`), 401, want)
			wantError(t, rawRequest(t, nc, "ops.node.auth.cluster.cluster_set_routes", c.auth, setBody), 401, want)

			r := httpRaw(t, n.HTTPPort(), c.auth, `{"operation":"cluster_set_routes","server":"hub","routes":[{"host":"127.0.0.1","port":1}]}`)
			wantHTTPError(t, r, 401, want)
		})
	}
	if got := n.Store.Commits(); got != before {
		t.Fatalf("unauthorized requests made %d store commits", got-before)
	}
	if got := nodetest.Routes(t, n); got != `{"hub":[],"leaf":[]}` {
		t.Fatalf("routes after unauthorized requests: %s", got)
	}

	// Tokens that are fine: the node's own key, and a configured trusted issuer.
	ok, err := events.Mint(trusted, "ops-team", "super_user", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{valid, ok} {
		if r := nodetest.Request(t, nc, "ops.cluster.cluster_get_routes", tok, `{}`); r.Status != 200 {
			t.Fatalf("valid token refused: %d %s", r.Status, r.Body)
		}
		if r := nodetest.HTTP(t, n, tok, `{"operation":"cluster_get_routes"}`); r.Status != 200 {
			t.Fatalf("valid token refused over HTTP: %d %s", r.Status, r.Body)
		}
	}
	// The scheme is case-insensitive, as in HTTP.
	if r := rawRequest(t, nc, "ops.cluster.cluster_get_routes", "bearer "+valid, `{}`); r.Status != 200 {
		t.Fatalf("lower-case bearer refused: %d %s", r.Status, r.Body)
	}
}

func TestNonSuperUserRoleIs403WithHarperDBBody(t *testing.T) {
	n := nodetest.StartNamed(t, "roles")
	nc := nodetest.Connect(t, n)
	handlers := map[string]string{
		"cluster_set_routes":    "setRoutes",
		"cluster_get_routes":    "getRoutes",
		"cluster_delete_routes": "deleteRoutes",
	}
	bodies := map[string]string{
		"valid":   `{"server":"hub","routes":[{"host":"127.0.0.1","port":1}]}`,
		"invalid": `{"server":"mesh","routes":[{"port":"x"}]}`, // the role check comes before validation
		"junk":    `not json`,
	}
	before := n.Store.Commits()
	for _, role := range []string{"cluster_user", "structure_user", "Super_User", "super_user "} {
		tok, err := n.Token("bob", role, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for op, handler := range handlers {
			want := `{"error":"This operation is not authorized due to role restrictions and/or invalid database items",` +
				`"unauthorized_access":["Operation '` + handler + `' is restricted to 'super_user' roles"],"invalid_schema_items":[]}`
			for name, body := range bodies {
				r := nodetest.Request(t, nc, "ops.cluster."+op, tok, body)
				if r.Status != 403 || string(r.Body) != want {
					t.Fatalf("%s %s (%s body) over NATS:\n got %d %s\nwant 403 %s", role, op, name, r.Status, r.Body, want)
				}
				if r.Header.Get("Nats-Service-Error-Code") != "403" ||
					r.Header.Get("Nats-Service-Error") != "This operation is not authorized due to role restrictions and/or invalid database items" {
					t.Fatalf("403 headers: %v", r.Header)
				}
			}
			r := nodetest.Request(t, nc, "ops.node.roles.cluster."+op, tok, bodies["valid"])
			if r.Status != 403 || string(r.Body) != want {
				t.Fatalf("%s %s on the node subject: %d %s", role, op, r.Status, r.Body)
			}
			h := nodetest.HTTP(t, n, tok, `{"operation":"`+op+`","server":"hub","routes":[{"host":"127.0.0.1","port":1}]}`)
			if h.Status != 403 || string(h.Body) != want {
				t.Fatalf("%s %s over HTTP:\n got %d %s\nwant 403 %s", role, op, h.Status, h.Body, want)
			}
		}
	}
	if got := n.Store.Commits(); got != before {
		t.Fatalf("forbidden requests made %d store commits", got-before)
	}
	if got := nodetest.Routes(t, n); got != `{"hub":[],"leaf":[]}` {
		t.Fatalf("routes after forbidden requests: %s", got)
	}
}
