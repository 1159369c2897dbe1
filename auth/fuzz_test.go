package auth

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"
)

// FuzzVerifyClaims signs arbitrary payloads with a trusted key: whatever the
// claims say, the verifier never panics, and what it accepts has a user, the
// clusterd audience, numeric times and a lifetime within its bound.
func FuzzVerifyClaims(f *testing.F) {
	key := newKey(f)
	now := time.Unix(1_800_000_000, 0)
	iss := IssuerID(pub(key))
	for _, s := range []string{
		`{"sub":"a","role":"super_user","aud":"clusterd","iat":1800000000,"exp":1800003600,"iss":"` + iss + `"}`,
		`{"sub":"a","role":"r","aud":["clusterd"],"iat":1800000000,"exp":"1800003600","iss":"` + iss + `"}`,
		`{"sub":"a","uid":"x","kind":"refresh","aud":"clusterd","iat":1.8e9,"exp":1.9e9,"iss":"` + iss + `"}`,
		`{"sub":"a","role":"r","aud":null,"iat":1800000000,"exp":1e308,"nbf":-1,"iss":"` + iss + `"}`,
		`[]`, `null`, `{"iss":1}`,
	} {
		f.Add(s)
	}
	v := NewVerifier(Limits{MaxTTL: time.Hour, MaxRefreshTTL: 2 * time.Hour}, pub(key))
	v.now = func() time.Time { return now }
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","typ":"JWT"}`))
	f.Fuzz(func(t *testing.T, payload string) {
		signing := header + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
		tok := signing + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(signing)))
		got, err := v.Verify(tok)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("refusal without a reason")
			}
			return
		}
		var c struct {
			Aud      any     `json:"aud"`
			Iat, Exp float64 `json:"-"`
		}
		_ = json.Unmarshal([]byte(payload), &c)
		if got.User == "" || (got.Role == "" && got.UserID == "") || c.Aud == nil {
			t.Fatalf("accepted %s as %+v", payload, got)
		}
		max := v.limits.MaxTTL
		if got.Kind == KindRefresh {
			max = v.limits.MaxRefreshTTL
		}
		if got.Expires.Sub(now) > max+leeway || !got.Expires.After(now.Add(-leeway)) {
			t.Fatalf("accepted %s expiring at %v", payload, got.Expires)
		}
	})
}
