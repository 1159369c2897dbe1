package events

import "testing"

func TestErrorBodyKeepsHarperDBKeyOrder(t *testing.T) {
	e := &Error{Status: 403, Message: "no <way>",
		Extra: map[string]any{"z": 1, "unauthorized_access": []string{"x"}, "a": true, "invalid_schema_items": []string{}},
		Order: []string{"unauthorized_access", "invalid_schema_items", "missing"},
	}
	want := `{"error":"no <way>","unauthorized_access":["x"],"invalid_schema_items":[],"a":true,"z":1}`
	if got := string(e.Body()); got != want {
		t.Fatalf("body\n got: %s\nwant: %s", got, want)
	}
	if got := string(Errorf(400, "'p' is required").Body()); got != `{"error":"'p' is required"}` {
		t.Fatalf("plain body: %s", got)
	}
}

func TestErrorBodyKeepsAngleBrackets(t *testing.T) {
	got := string(Errorf(400, "'node_name' invalid, must not contain ., * or >").Body())
	if got != `{"error":"'node_name' invalid, must not contain ., * or >"}` {
		t.Fatalf("body = %s", got)
	}
}
