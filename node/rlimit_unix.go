//go:build unix

package node

import "syscall"

// raiseFDLimit raises the soft RLIMIT_NOFILE to the hard limit (Go does so
// at start on most systems; this makes sure) and returns the limit in force,
// 0 when it cannot be read.
func raiseFDLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	if r.Cur < r.Max {
		want := r
		want.Cur = r.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
			r = want
		}
	}
	if r.Cur == ^uint64(0) { // RLIM_INFINITY: no cap needed
		return 0
	}
	return r.Cur
}
