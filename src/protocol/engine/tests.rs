//! Engine unit tests: no sockets, no sleeps; time is an input.
