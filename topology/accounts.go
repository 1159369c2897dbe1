package topology

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
)

// Accounts are nats-server's unit of isolation, and the security model rests
// on them (docs/security.md):
//
//   - ClusterdAccount holds clusterd's own connections, the inter-node
//     subjects (_clusterd.>), the operation responders, the transaction
//     stream (the only JetStream account) and every route and leafnode link.
//     No user of an app is ever in it.
//   - Each app user (the operator user included) is alone in an account of
//     its own, with no JetStream, that imports from ClusterdAccount only what
//     SPEC §3 allows: the node-addressed operations (ops.node.*.cluster.*),
//     publishing its own node's origin subjects of the transaction stream
//     (acknowledged by JetStream), and a read-only subset of the JetStream
//     API. Two connections of clusterd's inside the app account serve the
//     rest there: the node-local operations (ops.cluster.*) and the micro
//     protocol ($SRV.*), which an import would cost a response mapping per
//     request (measured: docs/security.md), and consumer creation and
//     deletion (jsproxy.go), which allows pull consumers only and lets an
//     account delete or replace only the consumers it created.
//
// Requests, replies and their headers travel between an app account and
// ClusterdAccount only through these imports, and nats-server routes a
// service's responses to the requester alone: no connection sees another
// account's inboxes.
const ClusterdAccount = "CLUSTERD"

// AppAccount names the account of app user name (shown by `nats account info`).
func AppAccount(name string) string {
	return "APP_" + accountSafe.ReplaceAllString(name, "_")
}

var accountSafe = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// responseThreshold bounds how long a service import keeps routing responses
// of one request: long enough for a pull request with a long expiry.
const responseThreshold = "10m"

// appServices are the ClusterdAccount subjects an app account imports, with
// the response type of each export. The JetStream API ones are read-only:
// no stream create/update/delete/purge, no message delete, no consumer
// create or delete (the proxy serves those).
func appServices(node string) []appService {
	return []appService{
		{subject: "ops.node.*.cluster.*"},
		// Writes: this node's origin only. The reply (JetStream's ack) comes
		// back through the import's response mapping.
		{subject: "txn.*.*." + node},
		{subject: "$JS.API.INFO"},
		{subject: "$JS.API.STREAM.NAMES"},
		{subject: "$JS.API.STREAM.LIST"},
		{subject: "$JS.API.STREAM.INFO." + TxnStreamName},
		{subject: "$JS.API.STREAM.MSG.GET." + TxnStreamName},
		{subject: "$JS.API.DIRECT.GET." + TxnStreamName, stream: true},
		{subject: "$JS.API.DIRECT.GET." + TxnStreamName + ".>"},
		{subject: "$JS.API.CONSUMER.INFO." + TxnStreamName + ".*"},
		{subject: "$JS.API.CONSUMER.NAMES." + TxnStreamName},
		{subject: "$JS.API.CONSUMER.LIST." + TxnStreamName},
		// Pulling from and acknowledging a consumer: exported for every
		// consumer, imported per consumer the app account made (Grant).
		{subject: "$JS.API.CONSUMER.MSG.NEXT." + TxnStreamName + ".*", stream: true, perConsumer: true},
		{subject: "$JS.ACK." + TxnStreamName + ".>", perConsumer: true},
	}
}

type appService struct {
	subject     string
	stream      bool // several responses per request
	perConsumer bool // not imported as a whole: see ConsumerGrants
}

// grantSubjects are the subjects an app account imports to pull from and
// acknowledge consumer name of the transaction stream.
func grantSubjects(name string) []string {
	return []string{"$JS.API.CONSUMER.MSG.NEXT." + TxnStreamName + "." + name, "$JS.ACK." + TxnStreamName + "." + name + ".>"}
}

// accountsConfig is the leaf server's accounts block, in nats-server's
// configuration language (the only way to enable JetStream for one account).
func accountsConfig(node string, apps []string) string {
	var b strings.Builder
	b.WriteString("accounts {\n  " + ClusterdAccount + " {\n    jetstream: enabled\n    exports: [\n")
	for _, s := range appServices(node) {
		rt := "singleton"
		if s.stream {
			rt = "stream"
		}
		fmt.Fprintf(&b, "      {service: %s, response_type: %s, response_threshold: %q}\n", strconv.Quote(s.subject), rt, responseThreshold)
	}
	b.WriteString("    ]\n  }\n")
	for _, a := range apps {
		fmt.Fprintf(&b, "  %s {\n    imports: [\n", strconv.Quote(a))
		for _, s := range appServices(node) {
			if !s.perConsumer {
				fmt.Fprintf(&b, "      {service: {account: %s, subject: %s}}\n", ClusterdAccount, strconv.Quote(s.subject))
			}
		}
		b.WriteString("    ]\n  }\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// leafAccounts parses accountsConfig into fresh options and returns the
// accounts by name.
func leafAccounts(node string, apps []string) ([]*server.Account, map[string]*server.Account, error) {
	o := &server.Options{}
	if err := o.ProcessConfigString(accountsConfig(node, apps)); err != nil {
		return nil, nil, fmt.Errorf("leaf server accounts: %w", err)
	}
	byName := map[string]*server.Account{}
	for _, a := range o.Accounts {
		byName[a.Name] = a
	}
	return o.Accounts, byName, nil
}

// moveGlobalStore moves the JetStream data a node stored before accounts
// existed (nats-server's global account, $G) to ClusterdAccount, so an
// upgraded node keeps its transaction stream and consumers: JetStream keeps
// each account's streams in a directory named after it. It runs before the
// leaf server starts; moved says whether there was anything to move.
func moveGlobalStore(storeDir string) (moved bool, err error) {
	base := filepath.Join(storeDir, server.JetStreamStoreDir)
	old, now := filepath.Join(base, server.DEFAULT_GLOBAL_ACCOUNT), filepath.Join(base, ClusterdAccount)
	if _, err := os.Stat(old); errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if _, err := os.Stat(now); err == nil {
		return false, fmt.Errorf("JetStream data in both %s (from a version before accounts) and %s: "+
			"keep the one to use under %s and move the other away", old, now, now)
	}
	if err := os.Rename(old, now); err != nil {
		return false, fmt.Errorf("move JetStream data of the global account to %s: %w", ClusterdAccount, err)
	}
	return true, nil
}

// MaxConsumerGrants bounds the consumers one app account may make on a node
// between two starts of clusterd: each is an import nats-server keeps until
// then (it has no way to remove one).
const MaxConsumerGrants = 20000

// ConsumerGrants lets app accounts pull from and acknowledge only the
// consumers they made. nats-server cannot filter an import by who made a
// consumer, so the pull and acknowledgement subjects of each consumer an
// app makes (through the consumer proxy) are imported into that app's
// account alone, at once. Clusterd's own consumers (and every other
// account's) stay out of its reach: it can neither steal their messages
// nor acknowledge them. A name granted to one account is never granted to
// another while the process runs.
type ConsumerGrants struct {
	leaf *server.Server
	mu   sync.Mutex
	by   map[string]string // consumer name -> account granted
	n    map[string]int    // account -> grants
}

// Grants returns the consumer grants of the leaf server's app accounts.
func (s *Servers) Grants() *ConsumerGrants { return s.grants }

// Owner says which account consumer name was granted to ("" if none).
func (g *ConsumerGrants) Owner(name string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.by[name]
}

// Grant imports consumer name's pull and acknowledgement subjects into app
// account acc. Granting a name again to the same account does nothing.
func (g *ConsumerGrants) Grant(acc, name string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch other := g.by[name]; {
	case other == acc:
		return nil
	case other != "":
		return fmt.Errorf("consumer name %q is in use by another account", name)
	case g.n[acc] >= MaxConsumerGrants:
		return fmt.Errorf("account %s made %d consumers since the node started, the most it may (restart clusterd to reset)", acc, MaxConsumerGrants)
	}
	app, err := g.leaf.LookupAccount(acc)
	if err != nil {
		return err
	}
	own, err := g.leaf.LookupAccount(ClusterdAccount)
	if err != nil {
		return err
	}
	for _, subj := range grantSubjects(name) {
		if err := app.AddServiceImport(own, subj, ""); err != nil {
			return fmt.Errorf("import %s into %s: %w", subj, acc, err)
		}
	}
	g.by[name] = acc
	g.n[acc]++
	return nil
}
