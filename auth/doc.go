// Package auth decides who a request comes from: clusterd's signed role
// tokens (Ed25519 JWTs: issuer keys, minting, verification with bounded
// lifetimes), HarperDB's Basic credentials against users and roles, and the
// operation/refresh token pair of create_authentication_tokens.
//
// It imports no other clusterd package and neither Watermill, Prometheus nor
// protobuf: the client package mints tokens with it, and a service importing
// the client pulls in only this.
package auth
