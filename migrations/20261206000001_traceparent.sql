-- The W3C traceparent of the call that submitted a job ('' when alyxd exports no traces): the
-- spans of its tasks, on whichever instance claims them, continue that trace.
ALTER TABLE jobs ADD COLUMN traceparent text NOT NULL DEFAULT ''
    CHECK (length(traceparent) <= 64);
