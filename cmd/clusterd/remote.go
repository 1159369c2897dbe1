package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clusterd/clusterd/auth"
	"github.com/clusterd/clusterd/client"
	"github.com/clusterd/clusterd/node"
	"github.com/nats-io/nats.go"
)

// remoteFlags are how the commands that talk to running nodes (status,
// replicate) reach one: over NATS like the nats CLI (--server with
// credentials, --context, or the selected nats context), or over HTTP.
type remoteFlags struct {
	server, user, password, creds string
	context                       string
	httpURL                       string
	token                         string
	config                        string
	timeout                       time.Duration
	https                         httpsFlags // with --http https://… (remotetls.go)
}

func (r *remoteFlags) register(fs *flag.FlagSet, withHTTP bool) {
	fs.StringVar(&r.server, "server", "", "NATS URL of a node's leaf client port (default: from the nats context)")
	fs.StringVar(&r.user, "user", "", "NATS user (with --server)")
	fs.StringVar(&r.password, "password", "", "NATS password (with --server)")
	fs.StringVar(&r.creds, "creds", "", "NATS credentials file (with --server)")
	fs.StringVar(&r.context, "context", "", "nats CLI context to connect with (default: the selected one, as the nats CLI)")
	if withHTTP {
		fs.StringVar(&r.httpURL, "http", "", "ask over HTTP instead: a node's operations API URL, e.g. http://127.0.0.1:9925 or https://node1:9925 (with --ca)")
		r.https.register(fs)
	}
	fs.StringVar(&r.token, "token", "", "super_user token (default: $CLUSTERD_TOKEN, else one signed with the issuer key of --config)")
	fs.StringVar(&r.config, "config", "", "the node's config file, to sign a token with its issuer key (env overrides apply)")
	fs.DurationVar(&r.timeout, "timeout", 10*time.Second, "how long one operation may take")
}

// bearer finds the super_user token to send: --token, $CLUSTERD_TOKEN, or
// one signed with the issuer key of the node's config (never created).
func (r *remoteFlags) bearer() (string, error) {
	if r.token != "" {
		return r.token, nil
	}
	if t := os.Getenv("CLUSTERD_TOKEN"); t != "" {
		return strings.TrimSpace(t), nil
	}
	cfg, err := node.Load(r.config, os.Environ())
	if err != nil {
		return "", err
	}
	keyFile := cfg.Auth.IssuerKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.RootPath, "issuer.key")
	}
	if _, err := os.Stat(keyFile); err != nil {
		return "", fmt.Errorf("a super_user token is needed: pass --token, set CLUSTERD_TOKEN (clusterd token prints one), or run this with the node's --config so its issuer key (%s, not found) signs one", keyFile)
	}
	key, _, err := auth.LoadOrCreateIssuerKey(keyFile)
	if err != nil {
		return "", err
	}
	return auth.Mint(key, "clusterd-cli", "super_user", 10*time.Minute)
}

// natsContext is the part of a nats CLI context file clusterd uses.
type natsContext struct {
	URL      string `json:"url"`
	User     string `json:"user"`
	Password string `json:"password"`
	Creds    string `json:"creds"`
	NKey     string `json:"nkey"`
	Token    string `json:"token"`
	Cert     string `json:"cert"`
	Key      string `json:"key"`
	CA       string `json:"ca"`
}

func natsConfigDir() string {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "nats")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".config", "nats")
}

// loadNatsContext reads the named context, or the selected one when name
// is empty ("" and no error when none is selected).
func loadNatsContext(name string) (natsContext, string, error) {
	dir := natsConfigDir()
	if name == "" {
		b, err := os.ReadFile(filepath.Join(dir, "context.txt"))
		if err != nil {
			return natsContext{}, "", nil
		}
		name = strings.TrimSpace(string(b))
		if name == "" {
			return natsContext{}, "", nil
		}
	}
	path := filepath.Join(dir, "context", name+".json")
	b, err := os.ReadFile(path)
	if err != nil {
		return natsContext{}, "", fmt.Errorf("nats context %q: %w", name, err)
	}
	var c natsContext
	if err := json.Unmarshal(b, &c); err != nil {
		return natsContext{}, "", fmt.Errorf("nats context %s: %w", path, err)
	}
	return c, name, nil
}

// connectNATS connects as the flags or the nats context say.
func (r *remoteFlags) connectNATS() (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("clusterd-cli"), nats.MaxReconnects(0), nats.Timeout(5 * time.Second)}
	url := r.server
	if r.server == "" || r.context != "" {
		c, name, err := loadNatsContext(r.context)
		if err != nil {
			return nil, err
		}
		if name == "" {
			return nil, errors.New("no node to ask: pass --server nats://HOST:PORT (a node's leaf client port) with --user/--password or --creds, " +
				"--context NAME (a nats CLI context, such as the one a node's first start prints), or --http http://HOST:PORT")
		}
		if url == "" {
			url = c.URL
		}
		if c.User != "" {
			opts = append(opts, nats.UserInfo(c.User, c.Password))
		}
		if c.Creds != "" {
			opts = append(opts, nats.UserCredentials(c.Creds))
		}
		if c.NKey != "" {
			o, err := nats.NkeyOptionFromSeed(c.NKey)
			if err != nil {
				return nil, fmt.Errorf("nats context %s: %w", name, err)
			}
			opts = append(opts, o)
		}
		if c.Token != "" {
			opts = append(opts, nats.Token(c.Token))
		}
		if c.Cert != "" && c.Key != "" {
			opts = append(opts, nats.ClientCert(c.Cert, c.Key))
		}
		if c.CA != "" {
			opts = append(opts, nats.RootCAs(c.CA))
		}
	}
	if r.user != "" {
		opts = append(opts, nats.UserInfo(r.user, r.password))
	}
	if r.creds != "" {
		opts = append(opts, nats.UserCredentials(r.creds))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", url, err)
	}
	return nc, nil
}

// opsCaller runs one operation on a node and decodes its reply.
type opsCaller interface {
	call(ctx context.Context, op string, req, reply any) error
	onNode(name string) opsCaller
	close()
}

// natsCaller calls over NATS with the client package.
type natsCaller struct {
	c  *client.Client
	nc *nats.Conn
}

func (n natsCaller) call(ctx context.Context, op string, req, reply any) error {
	return n.c.Call(ctx, op, req, reply)
}
func (n natsCaller) onNode(name string) opsCaller { return natsCaller{c: n.c.OnNode(name), nc: n.nc} }
func (n natsCaller) close()                       { n.nc.Close() }

// httpCaller posts to a node's operations API.
type httpCaller struct {
	url   string
	token string
	hc    *http.Client
}

func (h httpCaller) call(ctx context.Context, op string, req, reply any) error {
	body := map[string]any{}
	if req != nil {
		b, err := json.Marshal(req)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &body); err != nil {
			return err
		}
	}
	body["operation"] = op
	b, _ := json.Marshal(body)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(h.url, "/")+"/", bytes.NewReader(b))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	if h.token != "" {
		hr.Header.Set("Authorization", "Bearer "+h.token)
	}
	resp, err := h.hc.Do(hr)
	if err != nil {
		return fmt.Errorf("clusterd %s on %s: %w%s", op, h.url, err, tlsHint(err))
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		e := &client.Error{Op: op, Status: resp.StatusCode}
		if json.Unmarshal(out, &e.Body) == nil {
			e.Message, _ = e.Body["error"].(string)
		}
		if e.Message == "" {
			e.Message = strings.TrimSpace(string(out))
		}
		return e
	}
	if reply == nil {
		return nil
	}
	if err := json.Unmarshal(out, reply); err != nil {
		return fmt.Errorf("clusterd %s: decode reply: %w", op, err)
	}
	return nil
}
func (h httpCaller) onNode(string) opsCaller { return h }
func (h httpCaller) close()                  {}

// dial returns a caller as the flags say.
func (r *remoteFlags) dial() (opsCaller, error) {
	tok, err := r.bearer()
	if err != nil && !r.https.clientCert() {
		return nil, err // a client certificate may stand in for a token
	}
	if r.httpURL != "" {
		if r.server != "" || r.context != "" {
			return nil, errors.New("--http asks one node over HTTP: leave out --server and --context")
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if tr.TLSClientConfig, err = r.httpsConfig(); err != nil {
			return nil, err
		}
		return httpCaller{url: r.httpURL, token: tok, hc: &http.Client{Transport: tr, Timeout: r.timeout}}, nil
	}
	if err != nil {
		return nil, err
	}
	nc, err := r.connectNATS()
	if err != nil {
		return nil, err
	}
	return natsCaller{c: client.New(nc, client.WithToken(tok), client.WithTimeout(r.timeout)), nc: nc}, nil
}
