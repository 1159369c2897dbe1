package auth

// Built-in roles (HarperDB's names). A role stored with
// permission.super_user true counts as super_user too.
const (
	SuperUser   = "super_user"
	ClusterUser = "cluster_user"
)

// Caller is who sent a request, once authenticated.
type Caller struct {
	User string
	Role string
	// Super is true when the caller's role grants super_user: the built-in
	// role, or a stored role whose permission.super_user is true.
	Super bool
}

// Refusal is an authentication failure: the HTTP-style status (401, or 429
// while a user's failed logins are being slowed down) and the message the
// reply carries.
type Refusal struct {
	Status  int
	Message string
}

func (r *Refusal) Error() string { return r.Message }

func refuse(status int, msg string) *Refusal { return &Refusal{Status: status, Message: msg} }

// The 401 messages HarperDB answers; bad Bearer tokens say
// "Unauthorized: <reason>" instead (SPEC §3).
const (
	MsgMustLogin   = "Must login"
	MsgLoginFailed = "Login failed"
)
