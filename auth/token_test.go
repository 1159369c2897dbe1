package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

func signMap(t testing.TB, k ed25519.PrivateKey, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Every refusal names its reason; the bounds apply per kind of token.
func TestVerifierReasons(t *testing.T) {
	key := newKey(t)
	now := time.Unix(1_800_000_000, 0)
	v := NewVerifier(Limits{MaxTTL: time.Hour, MaxRefreshTTL: 48 * time.Hour}, pub(key))
	v.now = func() time.Time { return now }
	base := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "ann", "role": "super_user", "iss": IssuerID(pub(key)), "aud": "clusterd",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	}
	set := func(k string, x any) jwt.MapClaims {
		c := base()
		if x == nil {
			delete(c, k)
		} else {
			c[k] = x
		}
		return c
	}
	refresh := func(life time.Duration) jwt.MapClaims {
		c := base()
		c["kind"], c["exp"] = "refresh", now.Add(life).Unix()
		return c
	}
	cases := []struct {
		name   string
		claims jwt.MapClaims
		want   string // "" = accepted
	}{
		{"valid", base(), ""},
		{"aud as list", set("aud", []string{"x", "clusterd"}), ""},
		{"fractional exp", set("exp", float64(now.Add(time.Hour).Unix())+0.5), ""},
		{"refresh within its bound", refresh(47 * time.Hour), ""},
		{"refresh beyond its bound", refresh(49 * time.Hour), "token lives 49h0m0s (exp - iat), longer than auth.maxRefreshTokenTTL (48h0m0s)"},
		{"operation beyond its bound", set("exp", now.Add(2*time.Hour).Unix()), "token lives 2h0m0s (exp - iat), longer than auth.maxTokenTTL (1h0m0s)"},
		{"exp year 9999", set("exp", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC).Unix()), "token lives 2911698 days (exp - iat), longer than auth.maxTokenTTL (1h0m0s)"},
		{"exp huge", set("exp", 1e300), "token exp is out of range"},
		{"exp negative", set("exp", -1), "token exp is out of range"},
		{"exp string", set("exp", "1800003600"), "token exp must be a number of seconds since 1970, not a string"},
		{"exp object", set("exp", map[string]any{}), "token exp must be a number of seconds since 1970, not an object"},
		{"iat array", set("iat", []int{1}), "token iat must be a number of seconds since 1970, not an array"},
		{"nbf string", set("nbf", "0"), "token nbf must be a number of seconds since 1970, not a string"},
		{"no exp", set("exp", nil), "token has no exp"},
		{"no iat", set("iat", nil), "token has no iat"},
		{"exp before iat", set("exp", now.Add(-time.Second).Unix()), "token expires (exp) before it was issued (iat)"},
		{"future iat", set("iat", now.Add(time.Minute).Unix()), "token was issued in the future (iat 2027-01-15T08:01:00Z is 1m0s ahead of this node's clock)"},
		{"iat within leeway", set("iat", now.Add(3*time.Second).Unix()), ""},
		{"expired", set("exp", now.Add(-time.Minute).Unix()), "token expires (exp) before it was issued (iat)"},
		{"nbf ahead", set("nbf", now.Add(time.Minute).Unix()), "token is not valid yet (nbf)"},
		{"no aud", set("aud", nil), `token has no audience (aud); clusterd tokens carry aud "clusterd"`},
		{"other aud", set("aud", "harperdb"), `token audience "harperdb" does not include "clusterd"`},
		{"empty aud list", set("aud", []string{}), `token audience [] does not include "clusterd"`},
		{"aud number", set("aud", 7), "token audience (aud) must be a string or an array of strings"},
		{"no iss", set("iss", nil), "token has no issuer (iss)"},
		{"untrusted iss", set("iss", IssuerID(pub(newKey(t)))), "is not trusted (trusted: " + IssuerID(pub(key)) + ")"},
		{"no sub", set("sub", nil), "token has no user (sub)"},
		{"no role", set("role", nil), "token has no role"},
		{"unknown kind", set("kind", "admin"), `token kind "admin" is unknown (operation or refresh)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := v.Verify(signMap(t, key, c.claims))
			if c.want == "" {
				if err != nil || got.User != "ann" {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.HasSuffix(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
	// An expired token stays refused on a cache hit.
	tok := signMap(t, key, base())
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour)
	if _, err := v.Verify(tok); err == nil || err.Error() != "token has expired" {
		t.Fatalf("cached token after expiry: %v", err)
	}
}

func TestVerifierRefusesWhatIsNotAnEd25519JWT(t *testing.T) {
	key := newKey(t)
	v := NewVerifier(Limits{}, pub(key))
	good, err := Mint(key, "ann", SuperUser, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "ann"}).SignedString([]byte("k"))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "ann"}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for tok, want := range map[string]string{
		"":                                  "token is empty",
		"abc":                               "token is malformed (expected a signed JWT: header.payload.signature)",
		parts[0] + "." + parts[1]:           "token is malformed (expected a signed JWT: header.payload.signature)",
		parts[0] + "." + parts[1] + ".AAAA": "token signature is invalid",
		hs:                                  `token must be signed with EdDSA (Ed25519), not "HS256"`,
		none:                                `token must be signed with EdDSA (Ed25519), not "none"`,
		parts[0] + ".!!!." + parts[2]:       "token is malformed (expected a signed JWT: header.payload.signature)",
	} {
		if _, err := v.Verify(tok); err == nil || err.Error() != want {
			t.Errorf("%q: got %v, want %q", tok, err, want)
		}
	}
	got, err := v.Verify(good)
	if err != nil || got.User != "ann" || got.Role != SuperUser || got.Kind != KindOperation {
		t.Fatalf("good token: %+v %v", got, err)
	}
}
