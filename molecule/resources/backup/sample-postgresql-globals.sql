-- Re-runnable: the sample database and its owner are made afresh.
DROP DATABASE IF EXISTS crm;
DROP ROLE IF EXISTS crm_owner;
CREATE ROLE crm_owner LOGIN;
CREATE DATABASE crm OWNER crm_owner;
