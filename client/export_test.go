package client

import "time"

// Replies must decode without unknown fields in tests, so the reply types
// cannot fall behind what the nodes send.
func init() { strictReplies = true }

// NewMinter is WithIssuerKey's token source with a clock the test controls.
func NewMinter(ttl time.Duration, now func() time.Time, mint func() (string, error)) TokenSource {
	m := &minter{ttl: ttl, now: now, mint: mint}
	return m.token
}
