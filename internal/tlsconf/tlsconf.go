// Package tlsconf builds the crypto/tls configurations of Shoal's TLS
// endpoints (a storage node's tls-port, the managers' HTTPS API) and of
// their clients from certificate paths given as configuration.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Server loads a server certificate and key; with caFile, client
// certificates signed by that CA are verified, as clientAuth says:
// "yes" (required), "optional" (verified when sent), "no" or "" (not asked).
func Server(certFile, keyFile, caFile, clientAuth string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("TLS needs a certificate and a key file")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %q / key %q: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	switch clientAuth {
	case "", "no":
		return cfg, nil
	case "yes":
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	case "optional":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	default:
		return nil, fmt.Errorf("bad client authentication mode %q (yes, no, optional)", clientAuth)
	}
	if caFile == "" {
		return nil, errors.New("verifying client certificates needs a CA file (tls-ca-cert-file), or tls-auth-clients no")
	}
	pool, err := Pool(caFile)
	if err != nil {
		return nil, err
	}
	cfg.ClientCAs = pool
	return cfg, nil
}

// Client trusts the CA in caFile (and, with certFile/keyFile, presents
// that client certificate).
func Client(caFile, certFile, keyFile string) (*tls.Config, error) {
	pool, err := Pool(caFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("load TLS client certificate %q / key %q: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Pool reads PEM certificates into a pool.
func Pool(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %q holds no PEM certificate", caFile)
	}
	return pool, nil
}
