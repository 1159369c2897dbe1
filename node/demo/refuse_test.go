package demo_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node/demo"
)

// A demo that cannot start says why, does not panic, and leaves nothing
// behind: no temporary folder (with its password and issuer key), no --dir
// it created.
func TestDemoThatCannotStartLeavesNothing(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	// A port held by someone else, at the start of the demo's range.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	base := held.Addr().(*net.TCPAddr).Port
	if base > 65535-24 {
		t.Skip("the free port is too high to be a base")
	}
	dir := filepath.Join(t.TempDir(), "demo-dir")
	cases := []struct {
		name string
		o    demo.Options
		want string
	}{
		{"port in use", demo.Options{BasePort: base}, "port " + strconv.Itoa(base) + " on 127.0.0.1 is in use (is another demo or node running?); the demo needs ports " + strconv.Itoa(base) + " to " + strconv.Itoa(base+24) + ": stop what holds them, or pass --base-port with another base (0 picks free ports)"},
		{"port in use, --dir", demo.Options{BasePort: base, Dir: dir}, "is in use"},
		{"base beyond 65535", demo.Options{BasePort: 65530}, "--base-port 65530: the demo needs ports 65530 to 65554, which must lie between 1 and 65535; pass --base-port 0 to pick free ports"},
		{"negative base", demo.Options{BasePort: -5}, "must lie between 1 and 65535"},
		// Nodes start (files written), then set-up runs out of time.
		{"set-up fails", demo.Options{BasePort: 0, Timeout: time.Millisecond, Dir: dir}, "deadline exceeded"},
		{"set-up fails in a temporary folder", demo.Options{BasePort: 0, Timeout: time.Millisecond}, "deadline exceeded"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl, err := demo.Start(context.Background(), c.o)
			if err == nil {
				cl.Close()
				t.Fatal("the demo started")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v\nwant %q", err, c.want)
			}
			if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
				t.Fatalf("left in TMPDIR: %v", entries)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("--dir it created is still there (%v)", err)
			}
		})
	}
}
