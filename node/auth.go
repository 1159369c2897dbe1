package node

import (
	"fmt"
	"time"

	"github.com/clusterd/clusterd/auth"
)

// HarperDB's default token lifetimes (operationTokenTimeout 1d,
// refreshTokenTimeout 30d).
const (
	defaultOperationTokenTTL = 24 * time.Hour
	defaultRefreshTokenTTL   = 30 * 24 * time.Hour
	defaultAdminUser         = "admin"
)

// Limits are the token lifetime bounds in force.
func (a Auth) Limits() auth.Limits {
	l := auth.Limits{MaxTTL: a.MaxTokenTTL, MaxRefreshTTL: a.MaxRefreshTokenTTL}
	if l.MaxTTL <= 0 {
		l.MaxTTL = auth.DefaultMaxTokenTTL
	}
	if l.MaxRefreshTTL <= 0 {
		l.MaxRefreshTTL = auth.DefaultMaxRefreshTokenTTL
	}
	return l
}

// TokenTTLs are the lifetimes of the tokens create_authentication_tokens
// hands out: the configured ones, else HarperDB's defaults cut to the bounds.
func (a Auth) TokenTTLs() (operation, refresh time.Duration) {
	l := a.Limits()
	operation, refresh = a.OperationTokenTTL, a.RefreshTokenTTL
	if operation <= 0 {
		operation = min(defaultOperationTokenTTL, l.MaxTTL)
	}
	if refresh <= 0 {
		refresh = min(defaultRefreshTokenTTL, l.MaxRefreshTTL)
	}
	return operation, refresh
}

func (a Auth) problems() []string {
	var p []string
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"auth.maxTokenTTL", a.MaxTokenTTL}, {"auth.maxRefreshTokenTTL", a.MaxRefreshTokenTTL},
		{"auth.operationTokenTTL", a.OperationTokenTTL}, {"auth.refreshTokenTTL", a.RefreshTokenTTL},
	} {
		if d.v < 0 || d.v > 0 && d.v < time.Second {
			p = append(p, fmt.Sprintf("%s must be 0 (the default) or at least 1s, got %v", d.key, d.v))
		}
	}
	l := a.Limits()
	if a.OperationTokenTTL > l.MaxTTL {
		p = append(p, fmt.Sprintf("auth.operationTokenTTL (%v) must not be longer than auth.maxTokenTTL (%v)", a.OperationTokenTTL, l.MaxTTL))
	}
	if a.RefreshTokenTTL > l.MaxRefreshTTL {
		p = append(p, fmt.Sprintf("auth.refreshTokenTTL (%v) must not be longer than auth.maxRefreshTokenTTL (%v)", a.RefreshTokenTTL, l.MaxRefreshTTL))
	}
	return p
}
