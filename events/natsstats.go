package events

import (
	"strconv"
	"sync"
	"time"
)

// endpointStats counts one operation's replies over NATS. micro's own
// endpoint statistics cannot: the micro handler returns before the router
// has produced the reply (so micro sees every request as an instant
// success). These numbers go into each endpoint's "data" in `nats micro
// stats` and `nats micro info`, for local and node-addressed requests alike.
type endpointStats struct {
	mu        sync.Mutex
	requests  uint64
	errors    uint64
	statuses  map[int]uint64
	lastError string
	total     time.Duration
}

func (s *endpointStats) record(status int, body []byte, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.total += took
	if s.statuses == nil {
		s.statuses = map[int]uint64{}
	}
	s.statuses[status]++
	if status != 200 {
		s.errors++
		s.lastError = strconv.Itoa(status) + " " + errorText(body)
	}
}

// EndpointData is an endpoint's "data" in micro stats.
type EndpointData struct {
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
	// Statuses counts replies by status ("200", "400", …).
	Statuses         map[string]uint64 `json:"statuses"`
	LastError        string            `json:"last_error,omitempty"`
	AverageReplyTime string            `json:"average_reply_time"`
}

func (s *endpointStats) data() EndpointData {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := EndpointData{Requests: s.requests, Errors: s.errors, Statuses: map[string]uint64{}, LastError: s.lastError, AverageReplyTime: "0s"}
	for st, n := range s.statuses {
		d.Statuses[strconv.Itoa(st)] = n
	}
	if s.requests > 0 {
		d.AverageReplyTime = (s.total / time.Duration(s.requests)).String()
	}
	return d
}

// counted wraps a responder to record the reply in s.
func (s *endpointStats) counted(respond Responder) Responder {
	if s == nil {
		return respond
	}
	start := time.Now()
	return func(status int, body []byte) {
		s.record(status, body, time.Since(start))
		respond(status, body)
	}
}
