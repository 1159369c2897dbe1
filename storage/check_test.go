package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// filledStore writes some desired state and closes the store cleanly, so
// its data sits in table files listed by the MANIFEST.
func filledStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateRoutes(func(r *Routes) error {
		r.Hub = append(r.Hub, Route{Host: "10.0.0.1", Port: 9932})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var tables []Table
	for i := 0; i < 200; i++ {
		tables = append(tables, Table{TableKey: TableKey{Database: "data", Table: "t" + string(rune('a'+i%26)) + strings.Repeat("x", i)}, Created: time.Now()})
	}
	if _, err := s.PutTables(tables); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func ssts(t *testing.T, dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(m) == 0 {
		t.Fatalf("no table files in %s after a clean stop", dir)
	}
	return m
}

func TestCleanStoreOpensWithItsData(t *testing.T) {
	dir := filledStore(t)
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r, _ := s.Routes(); len(r.Hub) != 1 {
		t.Fatalf("routes after reopen: %+v", r)
	}
}

func TestDamagedStoreIsRefusedNamingTheFile(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string) string // returns the file to be named
		want   string
	}{
		{"truncated MANIFEST", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "MANIFEST")
			st, _ := os.Stat(p)
			if err := os.Truncate(p, st.Size()/2); err != nil {
				t.Fatal(err)
			}
			return p
		}, "cut short"},
		{"MANIFEST cut to its header", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "MANIFEST")
			if err := os.Truncate(p, 8); err != nil {
				t.Fatal(err)
			}
			return p
		}, "no longer lists tables"},
		{"MANIFEST removed", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "MANIFEST")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			return p
		}, "missing, while"},
		{"truncated table", func(t *testing.T, dir string) string {
			p := ssts(t, dir)[0]
			st, _ := os.Stat(p)
			if err := os.Truncate(p, st.Size()/2); err != nil {
				t.Fatal(err)
			}
			return p
		}, "unreadable"},
		{"flipped bytes in a table", func(t *testing.T, dir string) string {
			p := ssts(t, dir)[0]
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			for i := 100; i < 108; i++ {
				b[i] ^= 0xff
			}
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, ""},
		{"table removed", func(t *testing.T, dir string) string {
			p := ssts(t, dir)[0]
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			return p
		}, "missing (the MANIFEST lists it)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filledStore(t)
			file := c.damage(t, dir)
			s, err := Open(dir)
			if err == nil {
				r, _ := s.Routes()
				s.Close()
				t.Fatalf("damaged store opened (routes %+v)", r)
			}
			var de *DamageError
			if !errors.As(err, &de) {
				t.Fatalf("error is not a damage report: %v", err)
			}
			if de.File != file || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want it to name %s and say %q", err, file, c.want)
			}
		})
	}
}

// BenchmarkCheckFiles measures the check before open on a store holding
// 1000 nodes with 20 subscriptions each and 20000 tables.
func BenchmarkCheckFiles(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	var tables []Table
	for i := 0; i < 20000; i++ {
		tables = append(tables, Table{TableKey: TableKey{Database: "data", Table: fmt.Sprintf("table_%05d", i)}, Created: time.Now()})
	}
	for i := 0; i < len(tables); i += 1000 {
		if _, err := s.PutTables(tables[i : i+1000]); err != nil {
			b.Fatal(err)
		}
	}
	for n := 0; n < 1000; n++ {
		if err := s.UpdateNode(fmt.Sprintf("node_%04d", n), func(nd *Node, _ bool) (bool, error) {
			nd.Added = time.Now()
			for i := 0; i < 20; i++ {
				nd.Subscriptions = append(nd.Subscriptions, Subscription{Database: "data", Table: fmt.Sprintf("table_%05d", i), Subscribe: true, Publish: true})
			}
			return true, nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	var size int64
	m, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range m {
		if st, err := os.Stat(f); err == nil {
			size += st.Size()
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := CheckFiles(dir); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)/(1<<20), "store_MiB")
}
