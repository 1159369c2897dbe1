package events

import "testing"

func TestErrorBodyKeepsHarperDBKeyOrder(t *testing.T) {
	e := &Error{Status: 403, Message: "no <way>",
		Extra: map[string]any{"z": 1, "unauthorized_access": []string{"x"}, "a": true, "invalid_schema_items": []string{}},
		Order: []string{"unauthorized_access", "invalid_schema_items", "missing"},
	}
	want := `{"error":"no \u003cway\u003e","unauthorized_access":["x"],"invalid_schema_items":[],"a":true,"z":1}`
	if got := string(e.Body()); got != want {
		t.Fatalf("body\n got: %s\nwant: %s", got, want)
	}
	if got := string(Errorf(400, "'p' is required").Body()); got != `{"error":"'p' is required"}` {
		t.Fatalf("plain body: %s", got)
	}
}
