"""The scheduling framework: interfaces, endpoint snapshot, cycle, record, result, scheduler."""
