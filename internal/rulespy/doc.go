// Package rulespy is a test aid for the front ends (httpapi, resp): a
// registry node that notes every write its access rules
// (registry.MayApply) are asked about, so that a test can show a front end
// judges the very command it proposes with the registry's one rule set
// rather than a rule of its own. The rules themselves are the node's:
// nothing else changes. It imports no testing package; only tests use it.
package rulespy
