package events

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDecodeErrorNamesNoGoType(t *testing.T) {
	var v struct {
		Tables []struct {
			Next uint64 `json:"next"`
		} `json:"tables"`
	}
	for _, body := range []string{`{"tables":"x"}`, `{"tables":[{"next":-1}]}`, `{"tables":[{"next":1e30}]}`, `{`, `[1]`} {
		err := DecodeError("bad status request", json.Unmarshal([]byte(body), &v))
		if err == nil {
			t.Fatalf("%s: no error", body)
		}
		for _, w := range []string{"Go ", "uint64", "struct", "[]"} {
			if strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q names a Go type", body, err)
			}
		}
	}
}
