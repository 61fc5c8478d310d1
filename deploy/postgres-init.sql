-- One database per service; each service owns its data and reads no other's tables.
CREATE DATABASE accounts;
CREATE DATABASE credits;
