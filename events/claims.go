package events

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
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Audience is the `aud` every clusterd token carries.
const Audience = "clusterd"

// Caller is who sent a request, from a verified token.
type Caller struct {
	User string
	Role string
}

// Claims are the JWT claims of a clusterd role token.
type Claims struct {
	Role string `json:"role"`
	jwt.RegisteredClaims
}

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

// Mint signs a token for user with role, valid for ttl from now.
func Mint(key ed25519.PrivateKey, user, role string, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", errors.New("ttl must be positive")
	}
	now := time.Now()
	c := Claims{
		Role: role,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   user,
			Issuer:    IssuerID(key.Public().(ed25519.PublicKey)),
			Audience:  jwt.ClaimStrings{Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-5 * time.Second)),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(key)
}

// Verifier checks role tokens against the trusted issuer keys. Verified tokens
// are cached (bounded) so a caller's repeated requests cost one signature
// check, not one per request; expiry is still checked on every use. The
// cache is keyed by the token itself: a look-up is one string hash, where a
// SHA-256 of the token (and the copy it needed) was a quarter of a read
// operation's time in the dispatcher.
type Verifier struct {
	trusted map[string]ed25519.PublicKey
	parser  *jwt.Parser

	mu    sync.Mutex
	cache map[string]cachedClaims
}

type cachedClaims struct {
	caller Caller
	exp    time.Time
	nbf    time.Time
}

const verifierCacheMax = 4096

// NewVerifier trusts the given issuer keys.
func NewVerifier(trusted ...ed25519.PublicKey) *Verifier {
	v := &Verifier{
		trusted: map[string]ed25519.PublicKey{},
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithAudience(Audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(5*time.Second),
		),
		cache: map[string]cachedClaims{},
	}
	for _, k := range trusted {
		v.trusted[IssuerID(k)] = k
	}
	return v
}

// Verify parses an Authorization header value ("Bearer <jwt>") and returns the
// caller, or an error whose text says why the token is refused.
func (v *Verifier) Verify(header string) (Caller, error) {
	if header == "" {
		return Caller{}, errors.New("missing Authorization header")
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Caller{}, errors.New("Authorization header must be 'Bearer <token>'")
	}
	tok = strings.TrimSpace(tok)
	now := time.Now()
	v.mu.Lock()
	c, hit := v.cache[tok]
	v.mu.Unlock()
	if hit {
		if now.After(c.exp) {
			return Caller{}, errors.New("token has expired")
		}
		if now.Before(c.nbf) {
			return Caller{}, errors.New("token is not valid yet")
		}
		return c.caller, nil
	}
	var claims Claims
	_, err := v.parser.ParseWithClaims(tok, &claims, func(t *jwt.Token) (any, error) {
		iss, _ := t.Claims.GetIssuer()
		k, ok := v.trusted[iss]
		if !ok {
			return nil, errors.New("untrusted issuer")
		}
		return k, nil
	})
	if err != nil {
		return Caller{}, describeJWTError(err)
	}
	if claims.Subject == "" || claims.Role == "" {
		return Caller{}, errors.New("token must carry sub and role")
	}
	entry := cachedClaims{caller: Caller{User: claims.Subject, Role: claims.Role}, exp: claims.ExpiresAt.Time.Add(5 * time.Second)}
	if claims.NotBefore != nil {
		entry.nbf = claims.NotBefore.Time.Add(-5 * time.Second)
	}
	v.mu.Lock()
	if len(v.cache) >= verifierCacheMax {
		clear(v.cache)
	}
	v.cache[strings.Clone(tok)] = entry
	v.mu.Unlock()
	return entry.caller, nil
}

func describeJWTError(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return errors.New("token is malformed")
	case errors.Is(err, jwt.ErrTokenExpired):
		return errors.New("token has expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return errors.New("token is not valid yet")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return errors.New("token audience is not clusterd")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return errors.New("token is missing a required claim (exp)")
	case strings.Contains(err.Error(), "untrusted issuer"):
		return errors.New("token issuer is not trusted")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrSignatureInvalid):
		return errors.New("token signature is invalid")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return errors.New("token cannot be verified")
	default:
		return errors.New("token is invalid")
	}
}
