CREATE TABLE profiles (id bigint PRIMARY KEY, bio text NOT NULL DEFAULT '', lang text DEFAULT 'fr', legacy text);
INSERT INTO profiles (id, lang) VALUES (1, 'en'), (2, 'en'), (3, 'en');
