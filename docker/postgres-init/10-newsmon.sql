-- newsmon's shared state (NEWSMON_STATE_URL) lives in a database of its own on Airflow's
-- PostgreSQL server. The official postgres image runs this once, when its volume is new; on a
-- volume from before, create it by hand: CREATE DATABASE newsmon;
CREATE DATABASE newsmon;
