package api

// Event types of a watch stream's data lines.
const (
	EventPut    = "put"
	EventDelete = "delete"
	// EventCutoff ends the stream of a watcher that fell too far behind;
	// it resumes after ResumeRev.
	EventCutoff = "cutoff"
)

// Event is the data of one watch event (GET /v1/watch/{key}). A delete's
// KV holds only the key and the revision of the delete. PrevKV comes with
// ?prev_kv=true; ResumeRev with a cutoff only.
type Event struct {
	Type      string `json:"type"`
	KV        KV     `json:"kv"`
	PrevKV    *KV    `json:"prev_kv,omitempty"`
	ResumeRev int64  `json:"resume_rev,omitempty"`
}
