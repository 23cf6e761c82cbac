// cert-manager v1.21.2 is built from a go.mod that says `go 1.26.0`, so its
// binaries run with the Go 1.26 GODEBUG defaults. This module says `go 1.24`,
// which would otherwise select the Go 1.24 defaults. The one that matters here
// is urlstrictcolons (changed in Go 1.26): it changes what net/url.Parse
// accepts, and crypto/x509 calls url.Parse on every URI SAN in a CSR. Taking
// all defaults from go1.26 keeps the oracle's stdlib behaviour the same as
// cert-manager's.

//go:debug default=go1.26

// Command csr-oracle decodes the spec.request field of cert-manager
// CertificateRequests the same way cert-manager v1.21.2 does, and reports
// what it finds. It is a differential-testing oracle for Ferrum.
//
// It reads JSON lines on stdin, each {"id": <int>, "request": <JSON string>},
// and writes exactly one JSON line per input line to stdout, in order.
// See README.md for the output format.
//
// It uses only the Go standard library. cert-manager is NOT imported; each
// step below re-does the stdlib calls cert-manager makes, in the same order,
// and the comments name the cert-manager source they copy (tree:
// github.com/cert-manager/cert-manager, branch release-1.21, which for these
// files is the same as tag v1.21.1).
package main

import (
	"bufio"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"os"
)

// defaultMaxCSRSize mirrors internal/pem/decode.go:
//
//	maxCACertificatePEMSize   = 6500
//	maxLeafCertificatePEMSize = 30000 + maxCACertificatePEMSize   // = 36500
//
// SafeDecodeCSR uses GetGlobalSizeLimits().MaxCertificateSize, which defaults
// to maxLeafCertificatePEMSize. The controller can change it with
// pemSizeLimitsConfig.maxCertificateSize (default 36500, see
// internal/apis/config/controller/v1alpha1/defaults.go, and
// cmd/controller/app/controller.go: pem.SetGlobalSizeLimits). The webhook never
// calls SetGlobalSizeLimits, so the webhook always uses 36500.
const defaultMaxCSRSize = 36500

// input is how the apiserver / cert-manager decode a []byte field: a JSON
// string holding standard base64 (encoding/json []byte semantics).
type input struct {
	ID      int    `json:"id"`
	Request []byte `json:"request"`
}

type failure struct {
	ID    int    `json:"id"`
	OK    bool   `json:"ok"`
	Stage string `json:"stage"`
	Error string `json:"error"`
}

type extension struct {
	ID       string `json:"id"`
	Critical bool   `json:"critical"`
	Value    string `json:"value"`
}

type success struct {
	ID                 int               `json:"id"`
	OK                 bool              `json:"ok"`
	Label              string            `json:"label"`
	Headers            map[string]string `json:"headers"`
	DER                string            `json:"der"`
	RawSubject         string            `json:"rawSubject"`
	RawSPKI            string            `json:"rawSPKI"`
	SignatureAlgorithm string            `json:"signatureAlgorithm"`
	PublicKeyAlgorithm string            `json:"publicKeyAlgorithm"`
	DNSNames           []string          `json:"dnsNames"`
	EmailAddresses     []string          `json:"emailAddresses"`
	IPAddresses        []string          `json:"ipAddresses"`
	URIs               []string          `json:"uris"`
	Extensions         []extension       `json:"extensions"`
}

var b64 = base64.StdEncoding

// process handles one input line and returns the object to print.
func process(line []byte, maxSize int) (out any) {
	id := -1
	defer func() {
		// The stdlib parsers should never panic. If one does, say so instead
		// of dying, so that each input line still gets one output line.
		if r := recover(); r != nil {
			out = failure{ID: id, Stage: "panic", Error: fmt.Sprint(r)}
		}
	}()

	// Step 0: JSON -> []byte. encoding/json decodes a []byte field from a
	// base64 string with base64.StdEncoding (padding required, '\r' and '\n'
	// skipped). The apiserver and cert-manager's clientset do the same for
	// CertificateRequestSpec.Request ([]byte `json:"request"`,
	// pkg/apis/certmanager/v1/types_certificaterequest.go).
	var in input
	if err := json.Unmarshal(line, &in); err != nil {
		var idOnly struct {
			ID int `json:"id"`
		}
		if json.Unmarshal(line, &idOnly) == nil {
			id = idOnly.ID
		}
		return failure{ID: id, Stage: "json", Error: err.Error()}
	}
	id = in.ID
	b := in.Request

	// The CA issuer gets here as follows:
	//   pkg/controller/certificaterequests/ca/ca.go  (*CA).Sign
	//     -> c.templateGenerator(cr) = pki.CertificateTemplateFromCertificateRequest
	//   pkg/util/pki/certificatetemplate.go  CertificateTemplateFromCertificateRequest
	//     -> CertificateTemplateFromCSRPEM(cr.Spec.Request, ...)
	//   pkg/util/pki/certificatetemplate.go  CertificateTemplateFromCSRPEM
	//     -> DecodeX509CertificateRequestBytes(csrPEM); csr.CheckSignature()
	//   pkg/util/pki/parse.go  DecodeX509CertificateRequestBytes
	//     -> pem.SafeDecodeCSR(csrBytes); x509.ParseCertificateRequest(block.Bytes)
	//   internal/pem/decode.go  SafeDecodeCSR -> safeDecodeInternal(b, MaxCertificateSize)
	// The webhook (internal/apis/certmanager/validation/certificaterequest.go
	// validateCertificateRequestSpecRequest) calls the same
	// pki.CertificateTemplateFromCSRPEM.

	// Step 1 (internal/pem/decode.go safeDecodeInternal): size cap on the
	// whole []byte, before pem.Decode.
	//	if len(b) > maxSize { return nil, b, ErrPEMDataTooLarge(maxSize) }
	// DecodeX509CertificateRequestBytes (pkg/util/pki/parse.go) wraps the error as
	//	errors.NewInvalidData("error decoding certificate request PEM block: %s", err)
	if len(b) > maxSize {
		return failure{ID: id, Stage: "size", Error: fmt.Sprintf(
			"error decoding certificate request PEM block: provided PEM data was larger than the maximum %dB", maxSize)}
	}

	// Step 2 (internal/pem/decode.go safeDecodeInternal): stdpem.Decode, first
	// block, whatever its Type; the rest is ignored.
	//	block, rest := stdpem.Decode(b)
	//	if block == nil { return nil, rest, ErrNoPEMData }
	block, _ := pem.Decode(b)
	if block == nil {
		return failure{ID: id, Stage: "pem", Error: "error decoding certificate request PEM block: no PEM data was found in given input"}
	}

	// Step 3 (pkg/util/pki/parse.go DecodeX509CertificateRequestBytes):
	//	csr, err := x509.ParseCertificateRequest(block.Bytes)
	//	if err != nil { return nil, err }
	// block.Type and block.Headers are not checked.
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return failure{ID: id, Stage: "parse", Error: err.Error()}
	}

	// Step 4 (pkg/util/pki/certificatetemplate.go CertificateTemplateFromCSRPEM):
	//	if err := csr.CheckSignature(); err != nil { return nil, err }
	if err := csr.CheckSignature(); err != nil {
		return failure{ID: id, Stage: "signature", Error: err.Error()}
	}

	// After this, CertificateTemplateFromCSR (same file) builds the template
	// from csr (it can still fail when it decodes basicConstraints,
	// nameConstraints, keyUsage or extKeyUsage). The oracle stops here and
	// reports the parsed CSR.
	s := success{
		ID:                 id,
		OK:                 true,
		Label:              block.Type,
		Headers:            block.Headers,
		DER:                b64.EncodeToString(block.Bytes),
		RawSubject:         b64.EncodeToString(csr.RawSubject),
		RawSPKI:            b64.EncodeToString(csr.RawSubjectPublicKeyInfo),
		SignatureAlgorithm: csr.SignatureAlgorithm.String(),
		PublicKeyAlgorithm: csr.PublicKeyAlgorithm.String(),
		DNSNames:           []string{},
		EmailAddresses:     []string{},
		IPAddresses:        []string{},
		URIs:               []string{},
		Extensions:         []extension{},
	}
	if s.Headers == nil {
		s.Headers = map[string]string{}
	}
	s.DNSNames = append(s.DNSNames, csr.DNSNames...)
	s.EmailAddresses = append(s.EmailAddresses, csr.EmailAddresses...)
	for _, ip := range csr.IPAddresses {
		s.IPAddresses = append(s.IPAddresses, ip.String())
	}
	for _, u := range csr.URIs {
		s.URIs = append(s.URIs, u.String())
	}
	for _, e := range csr.Extensions {
		s.Extensions = append(s.Extensions, extension{
			ID:       e.Id.String(),
			Critical: e.Critical,
			Value:    b64.EncodeToString(e.Value),
		})
	}
	return s
}

func main() {
	maxSize := flag.Int("max-csr-size", defaultMaxCSRSize,
		"size cap on the decoded spec.request bytes (cert-manager pemSizeLimitsConfig.maxCertificateSize)")
	flag.Parse()

	r := bufio.NewReaderSize(os.Stdin, 1<<20)
	w := bufio.NewWriterSize(os.Stdout, 1<<16)
	enc := json.NewEncoder(w) // Encode adds the trailing '\n'
	enc.SetEscapeHTML(false)

	exit := 0
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			if eerr := enc.Encode(process(line, *maxSize)); eerr != nil {
				fmt.Fprintln(os.Stderr, "csr-oracle: write:", eerr)
				os.Exit(1)
			}
			// Flush when no more input is waiting, so the tool also works
			// as an interactive co-process, not only on whole files.
			if r.Buffered() == 0 {
				if ferr := w.Flush(); ferr != nil {
					fmt.Fprintln(os.Stderr, "csr-oracle: write:", ferr)
					os.Exit(1)
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "csr-oracle: read:", err)
			exit = 1
			break
		}
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "csr-oracle: write:", err)
		exit = 1
	}
	os.Exit(exit)
}
