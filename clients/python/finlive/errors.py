"""Exceptions raised by the finlive client."""


class FinliveError(Exception):
    """Base class of every error this package raises on its own."""


class SessionPoolingError(FinliveError):
    """Session-level ownership cannot hold on this connection.

    Raised before anything is marked when the connection goes through a
    proxy that does not keep one server session per client connection
    (PgBouncer with ``pool_mode = transaction`` or ``statement``): the lock
    would stay on a server session that the proxy hands to other clients,
    and this client would lose it without noticing.
    """


class AlreadyOwned(FinliveError):
    """Another live session owns the job (``finlive_mark`` returned NULL)."""

    def __init__(self, job_id, owner=None):
        self.job_id = job_id
        self.owner = owner
        detail = ""
        if owner is not None:
            detail = " (pid %s since %s, stage %s)" % (
                owner.get("pid"), owner.get("since"), owner.get("stage"))
        super().__init__("job %s is owned by another live session%s" % (job_id, detail))


class OwnershipLost(FinliveError):
    """This session no longer owns a job it marked."""

    def __init__(self, job_id, message=None):
        self.job_id = job_id
        super().__init__(message or "ownership of job %s was lost" % job_id)
