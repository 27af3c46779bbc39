CREATE TABLE profiles (
  id bigint PRIMARY KEY,
  bio text,
  lang text
);
