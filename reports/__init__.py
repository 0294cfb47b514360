"""R11.3: reports and charts (cost and duration by subscriber, group, destination, call type,
day and hour; top-N; unknown numbers; queues). Arrives with its own issue; the app stands
in the layers now so that it has its place (docs/architecture.md)."""
