package auth

import (
	"testing"
	"time"
)

// The authenticator's own cost per request once credentials are verified:
// Basic (HMAC of the credentials, cached user) against Bearer (cached token).
func BenchmarkAuthenticate(b *testing.B) {
	key := newKey(b)
	d := &dir{users: map[string]User{}}
	d.put(User{Name: "ann", Role: SuperUser, Super: true, Active: true, Hash: hashed(b, "pw"), ID: "1"})
	a := NewAuthenticator(NewVerifier(Limits{}, pub(key)), d)
	tok, _ := Mint(key, "ann", SuperUser, time.Hour)
	for name, h := range map[string]string{"basic": basic("ann", "pw"), "bearer": "Bearer " + tok} {
		if _, err := a.Authenticate(h); err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := a.Authenticate(h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
