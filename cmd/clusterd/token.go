package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/clusterd/clusterd/auth"
	"github.com/clusterd/clusterd/node"
)

// tokenIssuerKey loads the issuer key the node with cfg signs with. A missing
// key file is refused unless create is set: a token signed by a key made up
// on the spot (say, in another folder's ./clusterd-data) is one no node
// trusts, which the user would only learn from a 401 later.
func tokenIssuerKey(cfg node.Config, create bool, stderr io.Writer) (ed25519.PrivateKey, error) {
	keyFile := cfg.Auth.IssuerKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.RootPath, "issuer.key")
	}
	if _, err := os.Stat(keyFile); errors.Is(err, os.ErrNotExist) && !create {
		abs, _ := filepath.Abs(keyFile)
		return nil, fmt.Errorf("token: no issuer key at %s. A token must be signed with a key the node trusts: "+
			"run clusterd token with the node's --config (or its ROOTPATH / AUTH_ISSUERKEYFILE), where the node keeps "+
			"<rootPath>/issuer.key; to reach several nodes (ops.node.<name>), give them one key file (auth.issuerKeyFile) "+
			"or add its issuer to each node's auth.trustedIssuers. --create-key creates a new key here", abs)
	}
	key, created, err := auth.LoadOrCreateIssuerKey(keyFile)
	if err != nil {
		return nil, err
	}
	if created {
		fmt.Fprintf(stderr, "clusterd: created issuer key %s (issuer %s); nodes trust it once it is their auth.issuerKeyFile or in their auth.trustedIssuers\n",
			keyFile, auth.IssuerID(key.Public().(ed25519.PublicKey)))
	}
	return key, nil
}
