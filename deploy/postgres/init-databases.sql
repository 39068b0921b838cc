-- Run once by the postgres image, when its data volume is empty
-- (/docker-entrypoint-initdb.d). One database per service: no service reads another's tables.
-- (The migrate service runs `python -m services.common.migrate --create`, which would create
-- a missing one as well; these are the names the services' config.yml expect.)
CREATE DATABASE buurtpeil_polls;
CREATE DATABASE buurtpeil_panel;
CREATE DATABASE buurtpeil_notify;
CREATE DATABASE buurtpeil_responses;
CREATE DATABASE buurtpeil_feedback;
