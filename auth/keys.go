package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// IssuerID names an Ed25519 public key as it appears in `iss` and in
// auth.trustedIssuers: "ed25519:" + base64url(key).
func IssuerID(pub ed25519.PublicKey) string {
	return "ed25519:" + base64.RawURLEncoding.EncodeToString(pub)
}

// ParseIssuerID is the inverse of IssuerID.
func ParseIssuerID(id string) (ed25519.PublicKey, error) {
	raw, ok := strings.CutPrefix(id, "ed25519:")
	if !ok {
		return nil, fmt.Errorf("trusted issuer %q must start with \"ed25519:\"", id)
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("trusted issuer %q is not a base64url Ed25519 public key", id)
	}
	return ed25519.PublicKey(b), nil
}

// LoadOrCreateIssuerKey reads a PEM (PKCS#8) Ed25519 private key from path,
// generating and saving one (mode 0600) when the file does not exist.
func LoadOrCreateIssuerKey(path string) (ed25519.PrivateKey, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, false, fmt.Errorf("issuer key %s: no PEM block", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, false, fmt.Errorf("issuer key %s: %w", path, err)
		}
		pk, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, false, fmt.Errorf("issuer key %s: not an Ed25519 key", path)
		}
		return pk, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("issuer key %s: %w", path, err)
	}
	_, pk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(pk)
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	// Write a complete temp file, then link it into place: link fails if the
	// key exists, so two processes starting at once neither overwrite each
	// other's key nor read a half-written one.
	f, err := os.CreateTemp(filepath.Dir(path), ".issuer-key-*")
	if err != nil {
		return nil, false, fmt.Errorf("issuer key %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, false, err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, false, err
	}
	if err := f.Close(); err != nil {
		return nil, false, err
	}
	if err := os.Link(tmp, path); errors.Is(err, os.ErrExist) {
		return LoadOrCreateIssuerKey(path)
	} else if err != nil {
		return nil, false, fmt.Errorf("issuer key %s: %w", path, err)
	}
	return pk, true, nil
}
