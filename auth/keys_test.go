package auth

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Several processes (a 3-node mesh sharing auth.issuerKeyFile, or a node and
// `clusterd token`) may create the issuer key at the same moment: all must
// end up with the one key written to disk, and none may read a half-written
// file.
func TestLoadOrCreateIssuerKeyConcurrently(t *testing.T) {
	for round := 0; round < 20; round++ {
		path := filepath.Join(t.TempDir(), "keys", "issuer.key")
		const n = 8
		var wg sync.WaitGroup
		results := make([]struct {
			id      string
			created bool
			err     error
		}, n)
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				k, created, err := LoadOrCreateIssuerKey(path)
				results[i].created, results[i].err = created, err
				if err == nil {
					results[i].id = IssuerID(k.Public().(ed25519Pub))
				}
			}(i)
		}
		close(start)
		wg.Wait()
		creators := 0
		for i, r := range results {
			if r.err != nil {
				t.Fatalf("round %d, caller %d: %v", round, i, r.err)
			}
			if r.id != results[0].id {
				t.Fatalf("round %d: callers got different keys", round)
			}
			if r.created {
				creators++
			}
		}
		if creators != 1 {
			t.Fatalf("round %d: %d callers say they created the key", round, creators)
		}
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("key file: %v %v", err, st)
		}
		k, created, err := LoadOrCreateIssuerKey(path)
		if err != nil || created || IssuerID(k.Public().(ed25519Pub)) != results[0].id {
			t.Fatalf("reload: %v created=%v", err, created)
		}
	}
}

type ed25519Pub = ed25519.PublicKey
