#!/usr/bin/env perl
# md2site.pl OUTDIR FILE.md...: copies the Markdown pages (README.md, docs/*.md) into OUTDIR for
# Doxygen, so that they read on the site as they do on disk:
#   - each page gets a label, doc_<name> (README.md: doc_readme; docs/index.md is the main page,
#     "index"), and each heading doc_<name>_<GitHub-style anchor>, so links to "other.md#anchor"
#     become Doxygen references (@ref) that Doxygen itself checks;
#   - images under docs/img/ are named by file (Doxygen copies them from IMAGE_PATH);
#   - links to other files of the repository (examples, tests, headers) point at the file in the
#     source tree, relative to the site (build/docs/html), and must exist.
# Code blocks are copied untouched.
use strict;
use warnings;
use File::Basename qw(basename dirname);
use File::Spec;

my ($outdir, @files) = @ARGV;
die "usage: md2site.pl OUTDIR FILE.md...\n" unless defined $outdir && @files;
my $site_to_root = '../../..';  # from build/docs/html back to the repository root
my $bad = 0;

sub page_label {
    my ($path) = @_;  # a repository-relative path of a Markdown page
    return 'index' if $path eq 'docs/index.md';
    return 'doc_readme' if $path eq 'README.md';
    my $name = basename($path, '.md');
    $name =~ s/[^A-Za-z0-9_]/_/g;
    return "doc_$name";
}

# GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to hyphens.
sub slug {
    my ($text) = @_;
    $text = lc $text;
    $text =~ s/\[([^\]]*)\]\([^)]*\)/$1/g;
    $text =~ s/[^a-z0-9 _-]//g;
    $text =~ s/ /-/g;
    return $text;
}

# Normalises a path relative to the repository root ("docs/../README.md" -> "README.md").
sub norm {
    my ($path) = @_;
    my @out;
    for my $part (split m{/}, $path) {
        next if $part eq '' || $part eq '.';
        if ($part eq '..') { pop @out; next }
        push @out, $part;
    }
    return join '/', @out;
}

my %is_page = map { norm($_) => 1 } @files;

# Doxygen lists the pages in the order it reads them, so each output file is numbered in the order
# docs/index.md links to the pages (the reading order); pages it does not link to come after.
my %rank;
if (open my $index, '<', 'docs/index.md') {
    while (my $line = <$index>) {
        while ($line =~ /\]\(([^)#\s]+\.md)/g) {
            my $page = norm("docs/$1");
            $rank{$page} //= 1 + keys %rank;
        }
    }
    close $index;
}
$rank{'docs/index.md'} = 0;
my $next_rank = 1 + keys %rank;
$rank{$_} //= $next_rank++ for map { norm($_) } @files;

for my $file (@files) {
    my $path = norm($file);
    my $dir = dirname($path);
    $dir = '' if $dir eq '.';
    my $label = page_label($path);
    open my $in, '<', $file or die "md2site: cannot read $file: $!\n";
    my @lines = <$in>;
    close $in;

    # A code span that goes on over a line break is joined into one line: Doxygen would read a
    # continuation line starting with "* " as a list item.
    my @joined;
    my $fence = 0;
    for my $line (@lines) {
        $fence = !$fence if $line =~ /^\s*```/;
        my $prev_open = @joined && !$fence && $joined[-1] !~ /^\s*```/
            && (() = $joined[-1] =~ /`/g) % 2 == 1;
        if ($prev_open && $line !~ /^\s*$/) {
            chomp $joined[-1];
            $line =~ s/^\s+//;
            $joined[-1] .= " $line";
        } else {
            push @joined, $line;
        }
    }
    @lines = @joined;

    my (%seen, $in_fence, $first_heading_done, @out);
    for my $line (@lines) {
        if ($line =~ /^\s*```/) {
            $in_fence = !$in_fence;
            push @out, $line;
            next;
        }
        if ($in_fence) { push @out, $line; next }
        if ($line =~ /^(#+)\s+(.*?)\s*$/) {
            my ($hashes, $text) = ($1, $2);
            if (!$first_heading_done && length($hashes) == 1) {
                $first_heading_done = 1;
                $line = $label eq 'index' ? "$hashes $text\n" : "$hashes $text {#$label}\n";
            } else {
                my $s = slug($text);
                my $n = $seen{$s}++;
                $s .= "-$n" if $n;
                (my $id = "${label}_$s") =~ s/-/_/g;
                $line = "$hashes $text {#$id}\n";
            }
        }
        # Links outside inline code: [text](target) and ![alt](target).
        # Code spans are set aside first, so that a link's text may hold one.
        my @spans;
        $line =~ s{(`[^`]*`)}{push @spans, $1; "\0" . $#spans . "\0"}ge;
        $line =~ s{(!?)\[([^\]]*)\]\(([^)\s]+)\)}{convert($1, $2, $3, $path, $dir, $label)}ge;
        $line =~ s{\0(\d+)\0}{code_span($spans[$1])}ge;
        push @out, $line;
    }

    my $outname = sprintf '%02d_%s', $rank{$path}, $path eq 'README.md' ? 'readme.md' : basename($path);
    open my $out, '>', "$outdir/$outname" or die "md2site: cannot write $outdir/$outname: $!\n";
    print $out @out;
    close $out;
}
exit($bad ? 1 : 0);

# Doxygen runs its commands and autolinks inside a code span, and does not see one that starts
# with a quote: such spans become <code> with the characters it would act on escaped.
sub code_span {
    my ($span) = @_;
    my $body = substr($span, 1, -1);
    return $span unless $body =~ /'|[<>&\\@#%\$*]|(?:^|\W)::/;
    $body =~ s/&/&amp;/g;
    $body =~ s/</&lt;/g;
    $body =~ s/>/&gt;/g;
    $body =~ s/([\\@#%\$*])/\\$1/g;
    $body =~ s/(^|\W)::/$1\\::/g;
    return "<code>$body</code>";
}

sub convert {
    my ($bang, $text, $target, $path, $dir, $label) = @_;
    return "$bang\[$text\]($target)" if $target =~ m{^[a-z]+:};  # http:, https:, mailto:
    my ($file, $frag) = split /#/, $target, 2;
    my $anchor = sub {
        my ($page_label) = @_;
        return $page_label unless defined $frag && length $frag;
        (my $id = "${page_label}_$frag") =~ s/-/_/g;
        return $id;
    };
    if ($file eq '') {  # a heading of this page
        return "[$text](\@ref " . $anchor->($label) . ")";
    }
    my $repo_path = norm($dir eq '' ? $file : "$dir/$file");
    # A link to the built site itself (the README's) points at the page inside the site.
    return "$bang\[$text\](" . substr($repo_path, length 'build/docs/html/') . ")"
        if $repo_path =~ m{^build/docs/html/};
    if ($repo_path =~ /\.md$/ && ($is_page{$repo_path} || !-e $repo_path)) {
        if (!$is_page{$repo_path}) {
            warn "md2site: $path: link to $target, which is not one of the site's pages\n";
            $bad++;
            return "[$text]($target)";
        }
        return "[$text](\@ref " . $anchor->(page_label($repo_path)) . ")";
    }
    if (!-e $repo_path) {
        warn "md2site: $path: link to $target: $repo_path does not exist\n";
        $bad++;
    }
    if ($bang && $repo_path =~ m{^docs/img/}) {
        return "![$text](" . basename($repo_path) . ")";
    }
    # An HTML link, which Doxygen passes on as it is (it would take a Markdown link to a .md file
    # for a reference to one of its pages).
    return "$bang\[$text\]($site_to_root/$repo_path" . (defined $frag ? "#$frag" : '') . ")"
        if $bang || $repo_path !~ /\.md$/;
    return "<a href=\"$site_to_root/$repo_path\">$text</a>";
}
