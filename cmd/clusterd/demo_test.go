package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node/nodetest"
)

// `clusterd demo` starts the cluster, prints the guide, and stops cleanly on
// Ctrl-C (a real SIGINT to this process, caught by the command).
func TestDemoCommandStopsOnCtrlC(t *testing.T) {
	out, errb := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run([]string{"demo", "--base-port", "0"}, out, errb) }()
	nodetest.Eventually(t, 60*time.Second, "the demo guide", func() bool {
		select {
		case err := <-done:
			t.Fatalf("demo exited early: %v\n%s\n%s", err, out, errb)
		default:
		}
		return strings.Contains(out.String(), "Press Ctrl-C")
	})
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo: %v\n%s", err, errb)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo still running 30s after Ctrl-C")
	}
	if !strings.Contains(out.String(), "Stopped; nothing is left running.") {
		t.Fatalf("output:\n%s", out)
	}
}
