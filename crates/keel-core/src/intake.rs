//! Alert intake payloads (Prometheus Alertmanager webhook v4, generic JSON), parsed into
//! typed alerts and routed to components. Filled in by the intake work.
