package auth

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Audience is the `aud` every clusterd token carries.
const Audience = "clusterd"

// Token kinds (the `kind` claim). An operation token authorizes operations;
// a refresh token only mints new operation tokens (refresh_operation_token).
const (
	KindOperation = "operation"
	KindRefresh   = "refresh"
)

// Default bounds of token lifetimes (auth.maxTokenTTL, auth.maxRefreshTokenTTL).
const (
	DefaultMaxTokenTTL        = 24 * time.Hour
	DefaultMaxRefreshTokenTTL = 30 * 24 * time.Hour
)

// leeway absorbs clock skew between the minting and the verifying host.
const leeway = 5 * time.Second

// Token is what Mint signs.
type Token struct {
	User string
	Role string
	TTL  time.Duration
	// Kind is KindOperation (the default) or KindRefresh.
	Kind string
	// UserID ties the token to one incarnation of a stored user (its record
	// id): a dropped user's tokens, and those of a user dropped and
	// re-created under the same name, stop working. Empty for tokens minted
	// by `clusterd token` or a service's own key: those carry their role.
	UserID string
}

// claims is a token's payload as signed.
type claims struct {
	Subject  string   `json:"sub"`
	Role     string   `json:"role,omitempty"`
	Kind     string   `json:"kind,omitempty"`
	UserID   string   `json:"uid,omitempty"`
	Issuer   string   `json:"iss"`
	Audience []string `json:"aud"`
	IssuedAt int64    `json:"iat"`
	NotBef   int64    `json:"nbf"`
	Expires  int64    `json:"exp"`
}

// jwt.Claims, unused: the Verifier checks the claims itself so that every
// refusal names its real reason.
func (claims) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (claims) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (claims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (claims) GetIssuer() (string, error)                   { return "", nil }
func (claims) GetSubject() (string, error)                  { return "", nil }
func (claims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

// Mint signs an operation token for user with role, valid for ttl from now.
func Mint(key ed25519.PrivateKey, user, role string, ttl time.Duration) (string, error) {
	return MintToken(key, Token{User: user, Role: role, TTL: ttl})
}

// MintToken signs t with key.
func MintToken(key ed25519.PrivateKey, t Token) (string, error) {
	if t.TTL <= 0 {
		return "", errors.New("ttl must be positive")
	}
	if t.User == "" {
		return "", errors.New("a token needs a user")
	}
	now := time.Now()
	c := claims{
		Subject:  t.User,
		Role:     t.Role,
		UserID:   t.UserID,
		Issuer:   IssuerID(key.Public().(ed25519.PublicKey)),
		Audience: []string{Audience},
		IssuedAt: now.Unix(),
		NotBef:   now.Add(-leeway).Unix(),
		Expires:  now.Add(t.TTL).Unix(),
	}
	if t.Kind != KindOperation {
		c.Kind = t.Kind
	}
	return jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(key)
}

// Limits bound the tokens a Verifier accepts.
type Limits struct {
	// MaxTTL bounds an operation token's lifetime (exp - iat); 0 means
	// DefaultMaxTokenTTL.
	MaxTTL time.Duration
	// MaxRefreshTTL bounds a refresh token's lifetime; 0 means
	// DefaultMaxRefreshTokenTTL.
	MaxRefreshTTL time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxTTL <= 0 {
		l.MaxTTL = DefaultMaxTokenTTL
	}
	if l.MaxRefreshTTL <= 0 {
		l.MaxRefreshTTL = DefaultMaxRefreshTokenTTL
	}
	return l
}

// Verified is what a valid token says.
type Verified struct {
	User    string
	Role    string
	Kind    string // KindOperation or KindRefresh
	UserID  string
	Expires time.Time
	notBef  time.Time
}

// Verifier checks tokens against the trusted issuer keys and the lifetime
// bounds. Verified tokens are cached (bounded) so a caller's repeated
// requests cost one signature check, not one per request; expiry is still
// checked on every use. The cache is keyed by the token itself: a look-up
// is one string hash, where a SHA-256 of the token (and the copy it needed)
// was a quarter of a read operation's time in the dispatcher.
type Verifier struct {
	trusted map[string]ed25519.PublicKey
	ids     []string // trusted issuer ids, sorted, for messages
	limits  Limits
	parser  *jwt.Parser
	now     func() time.Time

	mu    sync.Mutex
	cache map[string]Verified
}

const verifierCacheMax = 4096

// NewVerifier trusts the given issuer keys within limits.
func NewVerifier(limits Limits, trusted ...ed25519.PublicKey) *Verifier {
	v := &Verifier{
		trusted: map[string]ed25519.PublicKey{},
		limits:  limits.withDefaults(),
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithoutClaimsValidation(),
		),
		now:   time.Now,
		cache: map[string]Verified{},
	}
	for _, k := range trusted {
		id := IssuerID(k)
		if _, dup := v.trusted[id]; !dup {
			v.ids = append(v.ids, id)
		}
		v.trusted[id] = k
	}
	slices.Sort(v.ids)
	return v
}

// Limits returns the bounds in force.
func (v *Verifier) Limits() Limits { return v.limits }

// Verify checks a token (without "Bearer ") and returns what it says, or an
// error whose text says why it is refused.
func (v *Verifier) Verify(tok string) (Verified, error) {
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return Verified{}, errors.New("token is empty")
	}
	now := v.now()
	v.mu.Lock()
	c, hit := v.cache[tok]
	v.mu.Unlock()
	if hit {
		return c, c.usableAt(now)
	}
	c, err := v.verify(tok, now)
	if err != nil {
		return Verified{}, err
	}
	v.mu.Lock()
	if len(v.cache) >= verifierCacheMax {
		clear(v.cache)
	}
	v.cache[strings.Clone(tok)] = c
	v.mu.Unlock()
	return c, nil
}

func (c Verified) usableAt(now time.Time) error {
	if now.After(c.Expires.Add(leeway)) {
		return errors.New("token has expired")
	}
	if now.Before(c.notBef.Add(-leeway)) {
		return errors.New("token is not valid yet (nbf)")
	}
	return nil
}

// rawClaims keeps the times as they were sent, so that a string or a
// fraction is refused by name rather than read loosely.
type rawClaims struct {
	Subject  string          `json:"sub"`
	Role     string          `json:"role"`
	Kind     string          `json:"kind"`
	UserID   string          `json:"uid"`
	Issuer   string          `json:"iss"`
	Audience json.RawMessage `json:"aud"`
	IssuedAt json.RawMessage `json:"iat"`
	NotBef   json.RawMessage `json:"nbf"`
	Expires  json.RawMessage `json:"exp"`
}

func (rawClaims) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (rawClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (rawClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (rawClaims) GetIssuer() (string, error)                   { return "", nil }
func (rawClaims) GetSubject() (string, error)                  { return "", nil }
func (rawClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

func (v *Verifier) verify(tok string, now time.Time) (Verified, error) {
	var rc rawClaims
	var keyErr error
	t, err := v.parser.ParseWithClaims(tok, &rc, func(t *jwt.Token) (any, error) {
		if rc.Issuer == "" {
			keyErr = errors.New("token has no issuer (iss)")
			return nil, keyErr
		}
		k, ok := v.trusted[rc.Issuer]
		if !ok {
			keyErr = fmt.Errorf("token issuer %s is not trusted (trusted: %s)", rc.Issuer, strings.Join(v.ids, ", "))
			return nil, keyErr
		}
		return k, nil
	})
	var alg string
	if t != nil {
		alg, _ = t.Header["alg"].(string)
	}
	switch {
	case err != nil && errors.Is(err, jwt.ErrTokenMalformed):
		return Verified{}, errors.New("token is malformed (expected a signed JWT: header.payload.signature)")
	case err != nil && alg != jwt.SigningMethodEdDSA.Alg():
		return Verified{}, fmt.Errorf("token must be signed with EdDSA (Ed25519), not %q", alg)
	case keyErr != nil:
		return Verified{}, keyErr
	case err == nil:
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrSignatureInvalid):
		return Verified{}, errors.New("token signature is invalid")
	default:
		return Verified{}, errors.New("token is malformed (expected a signed JWT: header.payload.signature)")
	}
	if err := checkAudience(rc.Audience); err != nil {
		return Verified{}, err
	}
	exp, err := numericDate("exp", rc.Expires, true)
	if err != nil {
		return Verified{}, err
	}
	iat, err := numericDate("iat", rc.IssuedAt, true)
	if err != nil {
		return Verified{}, err
	}
	nbf, err := numericDate("nbf", rc.NotBef, false)
	if err != nil {
		return Verified{}, err
	}
	kind := rc.Kind
	switch kind {
	case "", KindOperation:
		kind = KindOperation
	case KindRefresh:
	default:
		return Verified{}, fmt.Errorf("token kind %q is unknown (operation or refresh)", rc.Kind)
	}
	if ahead := iat.Sub(now); ahead > leeway {
		if ahead >= time.Minute {
			ahead = ahead.Round(time.Minute)
		}
		return Verified{}, fmt.Errorf("token was issued in the future (iat %s is %s ahead of this node's clock)",
			iat.UTC().Format(time.RFC3339), ahead.Round(time.Second))
	}
	if !exp.After(iat) {
		return Verified{}, errors.New("token expires (exp) before it was issued (iat)")
	}
	max, key := v.limits.MaxTTL, "auth.maxTokenTTL"
	if kind == KindRefresh {
		max, key = v.limits.MaxRefreshTTL, "auth.maxRefreshTokenTTL"
	}
	if life := exp.Unix() - iat.Unix(); life > int64((max+leeway)/time.Second) {
		return Verified{}, fmt.Errorf("token lives %s (exp - iat), longer than %s (%s)", lifetime(life), key, max)
	}
	if rc.Subject == "" {
		return Verified{}, errors.New("token has no user (sub)")
	}
	if rc.Role == "" && rc.UserID == "" {
		return Verified{}, errors.New("token has no role")
	}
	out := Verified{User: rc.Subject, Role: rc.Role, Kind: kind, UserID: rc.UserID, Expires: exp, notBef: nbf}
	return out, out.usableAt(now)
}

func checkAudience(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return fmt.Errorf("token has no audience (aud); clusterd tokens carry aud %q", Audience)
	}
	var list []string
	var one string
	if json.Unmarshal(raw, &one) == nil {
		list = []string{one}
	} else if json.Unmarshal(raw, &list) != nil {
		return errors.New("token audience (aud) must be a string or an array of strings")
	}
	if slices.Contains(list, Audience) {
		return nil
	}
	return fmt.Errorf("token audience %s does not include %q", strings.Join(quoteAll(list), ", "), Audience)
}

func quoteAll(s []string) []string {
	if len(s) == 0 {
		return []string{"[]"}
	}
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = fmt.Sprintf("%q", x)
	}
	return out
}

// maxNumericDate keeps conversions exact (2^53 s is far past any lifetime
// bound; the bound then refuses the token by name).
const maxNumericDate = 1 << 53

// numericDate reads a JWT NumericDate: a JSON number of seconds since 1970,
// never a string.
func numericDate(name string, raw json.RawMessage, required bool) (time.Time, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		if required {
			return time.Time{}, fmt.Errorf("token has no %s", name)
		}
		return time.Time{}, nil
	}
	if raw[0] == '"' || raw[0] == '{' || raw[0] == '[' || raw[0] == 't' || raw[0] == 'f' {
		return time.Time{}, fmt.Errorf("token %s must be a number of seconds since 1970, not %s", name, jsonKind(raw[0]))
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, fmt.Errorf("token %s must be a number of seconds since 1970", name)
	}
	if f < 0 || f > maxNumericDate {
		return time.Time{}, fmt.Errorf("token %s is out of range", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

func jsonKind(c byte) string {
	switch c {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	default:
		return "a boolean"
	}
}

// lifetime renders seconds as a duration, or in days past what a
// time.Duration holds (an exp in the year 9999).
func lifetime(sec int64) string {
	if sec < 100000*3600 {
		return (time.Duration(sec) * time.Second).String()
	}
	return fmt.Sprintf("%d days", sec/86400)
}
