package storage

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

const (
	prefixUser = "user/"
	prefixRole = "role/"
)

// User is a stored user (HarperDB's user record). The password is kept only
// as a salted slow hash.
type User struct {
	Username string `json:"username"`
	// Role is the role's name.
	Role   string `json:"role"`
	Active bool   `json:"active"`
	Hash   string `json:"hash"`
	// ID is new each time a user of this name is created, so that tokens
	// and cached credentials of a dropped user never serve a new one.
	ID      string `json:"id"`
	Created int64  `json:"created"` // ms since 1970
	Updated int64  `json:"updated"`
}

// Role is a stored role: a name, HarperDB's permission object (kept as
// sent: super_user and cluster_user decide here, the rest is shown), and an
// id the role operations address it by.
type Role struct {
	ID         string          `json:"id"`
	Role       string          `json:"role"`
	Permission json.RawMessage `json:"permission"`
	Created    int64           `json:"created"`
	Updated    int64           `json:"updated"`
}

// User reads a user.
func (s *Store) User(name string) (User, bool, error) {
	var u User
	var ok bool
	err := s.db.View(func(txn *badger.Txn) (err error) {
		ok, err = getJSON(txn, prefixUser+name, &u)
		return err
	})
	return u, ok, err
}

// Users lists the users, sorted by name.
func (s *Store) Users() ([]User, error) {
	var out []User
	err := s.db.View(func(txn *badger.Txn) (err error) {
		out, err = scanJSON[User](txn, prefixUser)
		return err
	})
	return out, err
}

// Roles lists the roles, in id order.
func (s *Store) Roles() ([]Role, error) {
	var out []Role
	err := s.db.View(func(txn *badger.Txn) (err error) {
		out, err = scanJSON[Role](txn, prefixRole)
		return err
	})
	return out, err
}

// RoleNamed finds a role by its name.
func (s *Store) RoleNamed(name string) (Role, bool, error) {
	roles, err := s.Roles()
	if err != nil {
		return Role{}, false, err
	}
	for _, r := range roles {
		if r.Role == name {
			return r, true, nil
		}
	}
	return Role{}, false, nil
}

// User reads a user inside the transaction.
func (t *Tx) User(name string) (User, bool, error) {
	var u User
	ok, err := getJSON(t.txn, prefixUser+name, &u)
	return u, ok, err
}

// Users lists the users inside the transaction.
func (t *Tx) Users() ([]User, error) { return scanJSON[User](t.txn, prefixUser) }

// PutUser writes a user.
func (t *Tx) PutUser(u User) error {
	if u.Username == "" {
		return fmt.Errorf("a user needs a name")
	}
	return setJSON(t.txn, prefixUser+u.Username, u)
}

// DeleteUser removes a user.
func (t *Tx) DeleteUser(name string) error { return t.txn.Delete([]byte(prefixUser + name)) }

// Roles lists the roles inside the transaction.
func (t *Tx) Roles() ([]Role, error) { return scanJSON[Role](t.txn, prefixRole) }

// Role reads a role by id inside the transaction.
func (t *Tx) Role(id string) (Role, bool, error) {
	var r Role
	ok, err := getJSON(t.txn, prefixRole+id, &r)
	return r, ok, err
}

// PutRole writes a role.
func (t *Tx) PutRole(r Role) error {
	if r.ID == "" {
		return fmt.Errorf("a role needs an id")
	}
	return setJSON(t.txn, prefixRole+r.ID, r)
}

// DeleteRole removes a role.
func (t *Tx) DeleteRole(id string) error { return t.txn.Delete([]byte(prefixRole + id)) }

// Meta reads a bookkeeping value inside the transaction ("" when unset).
func (t *Tx) Meta(key string) (string, error) {
	item, err := t.txn.Get([]byte(prefixMeta + key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	b, err := item.ValueCopy(nil)
	return string(b), err
}

// SetMeta writes a bookkeeping value inside the transaction.
func (t *Tx) SetMeta(key, value string) error {
	return t.txn.Set([]byte(prefixMeta+key), []byte(value))
}
