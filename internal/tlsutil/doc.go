// Package tlsutil builds the *tls.Config values rosterd serves and dials
// with, from PEM files that can be replaced while the process runs.
//
// A Source holds one identity (a certificate and its key, optional) and the
// certificate authorities it trusts (optional), loaded from files. Every
// *tls.Config it hands out reads the Source at each handshake
// (GetConfigForClient, GetClientCertificate, VerifyConnection), so a new
// certificate or CA takes effect for the next connection without a restart:
// after Reload (rosterd calls it on SIGHUP) or by itself when the files
// change on disk (checked at handshakes, at most once per CheckInterval). A
// reload that fails (a key that does not match its certificate, a file
// half-written) keeps the material in force and is logged.
//
// Client-side configurations verify the server against the Source's CAs
// (the system roots when it has none) with VerifyConnection rather than
// tls.Config.RootCAs, which cannot change after the config is in use.
package tlsutil
