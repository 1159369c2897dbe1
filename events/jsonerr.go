package events

import (
	"encoding/json"
	"errors"
	"fmt"
)

// DecodeError words a JSON decoding failure of what without Go's type
// names (json's own messages name Go structs and fields), for errors that
// can reach a reply: an inter-node message from a peer of another version.
func DecodeError(what string, err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return fmt.Errorf("%s: field '%s' has a %s where another type was expected", what, te.Field, te.Value)
	case errors.As(err, &te):
		return fmt.Errorf("%s: a %s where another type was expected", what, te.Value)
	case errors.As(err, &se):
		return fmt.Errorf("%s: not valid JSON (at byte %d)", what, se.Offset)
	case err != nil:
		return fmt.Errorf("%s: not valid JSON", what)
	}
	return nil
}
