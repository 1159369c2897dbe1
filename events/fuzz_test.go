package events

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary Authorization headers to the token verifier:
// it must never panic and must only accept tokens signed by a trusted key.
func FuzzVerify(f *testing.F) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	good, _ := Mint(key, "admin", SuperUser, time.Hour)
	f.Add("Bearer " + good)
	f.Add("Bearer " + good + "x")
	f.Add("bearer  " + good)
	f.Add("Basic abc")
	f.Add("Bearer a.b.c")
	f.Add("Bearer eyJhbGciOiJub25lIn0.eyJyb2xlIjoic3VwZXJfdXNlciJ9.")
	f.Add("")
	v := NewVerifier(pub)
	f.Fuzz(func(t *testing.T, header string) {
		c, err := v.Verify(header)
		if err != nil {
			return
		}
		if header != "Bearer "+good && c.Role == "" {
			t.Fatalf("accepted %q with no role", header)
		}
	})
}
