package bench

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

// pct returns the p-th percentile (0..100) of ds by nearest rank.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func secs(d time.Duration) float64 {
	return float64(d) / float64(time.Second)
}

// loadResult is what a request load produced.
type loadResult struct {
	lat  []time.Duration
	rate float64 // requests per second over the measured window
}

// requestLoad runs one requester per connection, each sending msg()
// (msg(i) for requester i) sequentially, first for warm (not measured) and then for dur, or — when
// count > 0 and there is a single connection — count requests. check
// validates every reply.
func requestLoad(conns []*nats.Conn, msg func(requester int) *nats.Msg, warm, dur time.Duration, count int, check func(*nats.Msg) error) (loadResult, error) {
	var (
		mu       sync.Mutex
		all      []time.Duration
		firstErr error
		measure  atomic.Bool
		stop     atomic.Bool
		done     atomic.Int64
		wg       sync.WaitGroup
	)
	for i, nc := range conns {
		wg.Add(1)
		go func(i int, nc *nats.Conn) {
			defer wg.Done()
			var lat []time.Duration
			for !stop.Load() {
				m := msg(i)
				t0 := time.Now()
				r, err := nc.RequestMsg(m, 10*time.Second)
				d := time.Since(t0)
				if err == nil && check != nil {
					err = check(r)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					stop.Store(true)
					break
				}
				if measure.Load() {
					lat = append(lat, d)
					if n := done.Add(1); count > 0 && n >= int64(count) {
						stop.Store(true)
					}
				}
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}(i, nc)
	}
	time.Sleep(warm)
	measure.Store(true)
	start := time.Now()
	if count == 0 {
		time.Sleep(dur)
		stop.Store(true)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return loadResult{}, firstErr
	}
	if len(all) == 0 {
		return loadResult{}, errors.New("no request completed")
	}
	return loadResult{lat: all, rate: float64(len(all)) / elapsed.Seconds()}, nil
}

// waitFor polls cond every step until it holds or timeout passes.
func waitFor(timeout, step time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(step)
	}
	return nil
}

// cpuTime is the CPU time (user + system) this process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
