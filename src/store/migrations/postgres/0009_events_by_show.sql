-- Shopper events are indexed by show alone (then by where the row is, which follows seq), not by show, cue,
-- product, type, price and quantity. The wide index covered the analytics query, but every
-- event landed at a random place in it (its product): each one dirtied a page of the index of
-- its own, written to the write-ahead log and then into the file, and that was most of the cost
-- of recording an event (docs/benchmarks/events.md). By show and seq, a show's events are
-- appended at the end of its range. The analytics query reads the show's rows through it and
-- groups them itself: about as fast (a show of 54,000 events: 80 against 45 ms for the grouped
-- figures, 18 against 45 ms for the distinct shoppers).
DROP INDEX events_by_show;
CREATE INDEX events_by_show ON events (show);
