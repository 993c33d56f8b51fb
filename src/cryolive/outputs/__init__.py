"""Files a processing step writes for people and for the database rows that point at them."""
